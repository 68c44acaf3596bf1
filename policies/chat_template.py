"""The ChatML + tools chat template (Qwen2.5/Hermes style) of agentgym's tiny models, and its special tokens.

Kept as data next to the model builder so every tokenizer we write renders conversations the same way:
tools listed in the system turn inside ``<tools></tools>``, assistant tool calls as
``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``, each ``tool`` message as a user turn
holding ``<tool_response>\\n...\\n</tool_response>``, and ``add_generation_prompt`` opening an assistant turn.
"""

from __future__ import annotations

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"           # end of every turn; the model's eos
ENDOFTEXT = "<|endoftext|>"     # padding
TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END, TOOL_CALL_OPEN, TOOL_CALL_CLOSE)

DEFAULT_SYSTEM = "You are a helpful assistant."

# Text parts of list-valued contents are joined; images are dropped (text-only models).
CHATML_TOOLS_TEMPLATE = r"""
{%- macro content_text(content) -%}
{%- if content is none -%}
{%- elif content is string -%}{{ content }}
{%- else -%}{%- for part in content -%}{%- if part.type == 'text' -%}{{ part.text }}{%- endif -%}{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- if tools -%}
{{- '<|im_start|>system\n' -}}
{%- if messages and messages[0].role == 'system' -%}{{- content_text(messages[0].content) -}}
{%- else -%}{{- 'You are a helpful assistant.' -}}{%- endif -%}
{{- '\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>' -}}
{%- for tool in tools -%}{{- '\n' -}}{{- tool | tojson -}}{%- endfor -%}
{{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' -}}
{%- elif messages and messages[0].role == 'system' -%}
{{- '<|im_start|>system\n' + content_text(messages[0].content) + '<|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages -%}
{%- if message.role == 'system' and loop.first -%}
{%- elif message.role == 'assistant' -%}
{{- '<|im_start|>assistant\n' + content_text(message.content) -}}
{%- if message.tool_calls -%}
{%- for tool_call in message.tool_calls -%}
{%- set call = tool_call.function if tool_call.function is defined else tool_call -%}
{%- if (loop.first and content_text(message.content)) or not loop.first -%}{{- '\n' -}}{%- endif -%}
{{- '<tool_call>\n{"name": "' + call.name + '", "arguments": ' -}}
{%- if call.arguments is string -%}{{- call.arguments -}}{%- else -%}{{- call.arguments | tojson -}}{%- endif -%}
{{- '}\n</tool_call>' -}}
{%- endfor -%}
{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- elif message.role == 'tool' -%}
{{- '<|im_start|>user\n<tool_response>\n' + content_text(message.content) + '\n</tool_response><|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>' + message.role + '\n' + content_text(message.content) + '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}
""".strip()


def assistant_message_from_text(text: str, turn: int = 0) -> tuple[dict, bool]:
    """Generated text -> (OpenAI assistant message, has_tool_calls), reading ``<tool_call>`` JSON like vLLM's
    hermes parser: content is the text before the first call (None if empty), calls go to ``tool_calls``.

    Malformed calls leave the whole text as content (no ``tool_calls``) so the env can tell the agent why.
    """
    import json

    from agentgym.tool_calls import HermesToolCalls, strip_reasoning

    parser = HermesToolCalls()
    visible = strip_reasoning(text)
    if not parser.detect({}, visible):
        return {"role": "assistant", "content": text}, False
    parsed = parser.parse({}, visible, turn)
    if parsed.errors or not parsed.calls:
        return {"role": "assistant", "content": text}, False
    content = text.split(TOOL_CALL_OPEN, 1)[0].strip() or None
    calls = [{"id": call.id, "type": "function",
              "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}}
             for call in parsed.calls]
    return {"role": "assistant", "content": content, "tool_calls": calls}, True
