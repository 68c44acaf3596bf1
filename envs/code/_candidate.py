"""The candidate side of assert-style grading, loaded into a fresh sandboxed interpreter that holds the submission.

Stdlib only; never imported by the host. The host drives it one call at a time (``_agentgym_call``) wherever a
later argument may be built from an earlier expected answer, so the submission never sees such an argument before
it has answered; tests whose arguments are fixed in advance come a run at a time (``_agentgym_tests``), each
under its own CPU timer, their answers streamed to stdout as they are made. Arguments arrive as ``_plaindata``'s
tagged form and answers leave the same way: a value the submission returns that is not builtin plain data is
reported as an error. Everything this interpreter sends back is only a claim about what the submission returned;
the verdict is the trusted harness's.
"""

import importlib.util
import json
import os
import signal
import sys
import traceback

from _plaindata import NotPlainData, decode, encode

OUTPUT_LIMIT = 1 << 20
_STATE = {"ns": None, "error": "the submission was not loaded"}


def _describe(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[-1000:]


def _agentgym_load(code, prelude):
    """Import the submission from a fresh file as module ``solution``, then run the tests' prelude in it."""
    os.makedirs("_grading", exist_ok=True)
    path = os.path.abspath(os.path.join("_grading", "solution.py"))
    with open(path, "w") as f:
        f.write(code)
    spec = importlib.util.spec_from_file_location("solution", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["solution"] = module
    try:
        spec.loader.exec_module(module)
        exec(prelude, module.__dict__)  # the tests' imports and constants, which a solution may lean on
    except BaseException as exc:
        if type(exc).__name__ == "ExecutionTimeout":
            raise
        _STATE["error"] = "import failed: " + (_describe(exc) if not isinstance(exc, SystemExit) else "exit()")
        return json.dumps({"status": "error", "error": _STATE["error"]})
    _STATE["ns"], _STATE["error"] = module.__dict__, None
    return json.dumps({"status": "ok"})


class _TestTimeout(BaseException):
    """A test of a run used up its CPU time."""


def _on_prof(signum, frame):
    raise _TestTimeout()


def _passes_through(exc):
    """The timers' exceptions end the call (and the test); everything else is the call's own outcome."""
    return isinstance(exc, _TestTimeout) or type(exc).__name__ == "ExecutionTimeout"


def _answer(call):
    """The answer to one call ``[name, tagged args, tagged kwargs]``, as JSON text."""
    name, args, kwargs = call
    ns = _STATE["ns"]
    if ns is None:
        return json.dumps({"status": "error", "error": _STATE["error"]})
    fn = ns.get(name)
    if not callable(fn):
        return json.dumps({"status": "error", "error": "the submission defines no function %s" % name})
    args, kwargs = decode(args), decode(kwargs)
    before = json.dumps(encode(args))
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:  # the test may expect it; its class name goes back, the class itself cannot
        if _passes_through(exc):
            raise
        return json.dumps({"status": "error", "raised": type(exc).__name__, "error": _describe(exc)})
    try:
        answer = {"status": "ok", "v": encode(value)}
        after = encode(args)
        if json.dumps(after) != before:  # the call changed its arguments in place: the harness does the same
            answer["a"] = after
        text = json.dumps(answer)
    except (NotPlainData, TypeError, ValueError, RecursionError) as exc:
        return json.dumps({"status": "error", "error": "returned %s" % exc})
    if len(text) > OUTPUT_LIMIT:
        return json.dumps({"status": "error", "error": "return value too large (%d characters)" % len(text)})
    return text


def _agentgym_call(text):
    """One call; its answer as JSON text."""
    return _answer(json.loads(text))


def _agentgym_tests(text):
    """A run of tests ``{"tests": [[call, ...], ...], "cpu": seconds, "limit": chars}``: each answer is printed as
    a line ``{"t", "j", ...answer}`` once made; returns ``{"next": k}``, the first test not run (the run stops
    early once `limit` characters of answers are out, so the host asks again from there)."""
    job = json.loads(text)
    sent = 0
    old = signal.signal(signal.SIGPROF, _on_prof)
    try:
        for t, calls in enumerate(job["tests"]):
            j = 0
            signal.setitimer(signal.ITIMER_PROF, float(job["cpu"]))
            try:
                for j, call in enumerate(calls):
                    line = '{"t": %d, "j": %d, "answer": %s}\n' % (t, j, _answer(call))
                    sys.stdout.write(line)
                    sent += len(line)
            except _TestTimeout:
                sys.stdout.write('{"t": %d, "j": %d, "answer": {"status": "timeout"}}\n' % (t, j))
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
            if sent > job["limit"]:
                return json.dumps({"next": t + 1})
    finally:
        signal.signal(signal.SIGPROF, old)
    return json.dumps({"next": len(job["tests"])})
