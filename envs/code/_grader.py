"""The candidate process for call and stdio tests: runs the submission in a fresh sandbox (stdlib only; never
imported by the host).

It reads one job (JSON) from stdin, writes the submission to a fresh file and imports it from that copy, runs
each test under its own timer, and writes one JSON line per test, tagged with the job's nonce, to a private
duplicate of stdout (descriptors 0-2 then point at /dev/null). It only reports what the submission did; the host
decides every verdict. Modes:
  - call:   call ``entry(*args)`` per test and send back the JSON of the return value; the host compares it
            with the expected value, which never enters the sandbox;
  - stdio:  run the program as ``__main__`` per test with the test's stdin and send back what it printed.
(Assert-style tests never run next to the submission: see ``_candidate.py`` and ``_harness.py``.)
The exit status means nothing: the host counts per-test lines, and a missing line is a failed test.
"""

import builtins
import importlib.util
import io
import json
import os
import signal
import sys
import traceback

OUTPUT_LIMIT = 1 << 20


class TestTimeout(BaseException):
    """A test ran past its time (a BaseException, so the submission's `except Exception` cannot swallow it)."""


def main():
    job = json.loads(sys.stdin.readline())
    nonce = job.pop("nonce")
    out_fd = os.dup(1)
    write = os.write
    dumps = json.dumps
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr = io.StringIO()
    builtins.exit = builtins.quit = sys.exit

    def send(obj):
        obj["nonce"] = nonce
        data = (dumps(obj) + "\n").encode("utf-8", "replace")
        while data:
            data = data[write(out_fd, data):]

    armed = [False]
    main_pid = os.getpid()

    def on_alarm(signum, frame):
        if armed[0]:
            raise TestTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    timeout = float(job.get("timeout", 2.0))
    mode = job["mode"]
    os.makedirs("_grading", exist_ok=True)
    path = os.path.abspath(os.path.join("_grading", "solution.py"))
    with open(path, "w") as f:
        f.write(job["code"])

    def timed(fn):
        """Run fn() under the per-test timer; return (status, value, error text)."""
        armed[0] = True
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return "ok", fn(), None
        except TestTimeout:
            return "timeout", None, "timed out after %g s" % timeout
        except SystemExit as exc:
            return "exit", exc.code, None
        except BaseException as exc:
            return "error", None, "".join(traceback.format_exception_only(type(exc), exc)).strip()[-2000:]
        finally:
            if os.getpid() != main_pid:  # a child the submission forked must not report results
                os._exit(0)
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    tests = job["tests"]
    if mode == "stdio":
        with open(path) as f:
            source = f.read()
        try:
            program = compile(source, path, "exec")
        except BaseException as exc:
            for i in range(len(tests)):
                send({"i": i, "status": "error", "error": "%s: %s" % (type(exc).__name__, exc)})
            program = None
        for i, test in enumerate(tests if program is not None else []):
            buf = io.StringIO()

            def run_program():
                sys.stdin = io.StringIO(test["stdin"])
                sys.stdout = buf
                exec(program, {"__name__": "__main__", "__file__": path, "__builtins__": builtins})

            status, value, error = timed(run_program)
            sys.stdout, sys.stdin = io.StringIO(), open(os.devnull)
            if status == "exit" and value not in (None, 0):
                status, error = "error", "exited with status %r" % (value,)
            elif status == "exit":
                status = "ok"
            text = buf.getvalue()
            send({"i": i, "status": status, "out": text[:OUTPUT_LIMIT], "error": error})
    else:
        spec = importlib.util.spec_from_file_location("solution", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["solution"] = module
        status, _, error = timed(lambda: spec.loader.exec_module(module))
        if status != "ok":
            error = error or "the submission exited while being imported"
            for i in range(len(tests)):
                send({"i": i, "status": "error", "error": "import failed: " + error})
            tests = []
        ns = module.__dict__
        for i, test in enumerate(tests):
            fn = ns.get(job["entry"])
            if not callable(fn):
                send({"i": i, "status": "error", "error": "the submission defines no function %s" % job["entry"]})
                continue
            status, value, error = timed(lambda: fn(*test["args"]))
            reply = {"i": i, "status": "error" if status == "exit" else status, "error": error}
            if status == "exit":
                reply["error"] = "called exit()"
            if status == "ok":
                try:
                    encoded = dumps(value)
                except (TypeError, ValueError):
                    encoded = None
                if encoded is None:
                    reply.update(status="error", error="returned a %s, which is not JSON data" % type(value).__name__)
                elif len(encoded) > OUTPUT_LIMIT:
                    reply.update(status="error", error="return value too large (%d characters)" % len(encoded))
                else:
                    reply["out"] = value
            send(reply)
    send({"done": True})
    os._exit(0)  # skip the submission's atexit hooks and finalizers


if __name__ == "__main__":
    main()
