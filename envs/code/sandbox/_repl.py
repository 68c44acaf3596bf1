"""The interpreter server that runs inside a sandbox: a persistent namespace driven by JSON lines (stdlib only).

Started as ``python3 -S -s -B -c <this source> [--own-pidns] OUTPUT_CHARS``. Requests arrive on stdin, one JSON
object per line; answers leave on a private duplicate of stdout. Descriptors 0-2 then point at /dev/null, so
code that writes to them directly cannot corrupt the protocol by accident. Ops: exec (code, timeout), write
(path, base64 data), read (path). An execution that overruns its timeout is interrupted in place (the
namespace survives); a process that ignores the interrupt is killed from outside by the host. With a pid
namespace of its own (``--own-pidns``), every process a cell started is killed when the cell returns: only
the interpreter persists between cells, never what its code forked or spawned.
"""

import ast
import base64
import builtins
import json
import linecache
import os
import signal
import sys
import time
import traceback

READ_LIMIT = 8 << 20


class ExecutionTimeout(BaseException):
    """Raised into running code when its time is up (a BaseException, so `except Exception` does not swallow it)."""


class CappedWriter:
    """A text stream that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit):
        self.limit = limit
        self.parts = []
        self.kept = 0
        self.dropped = 0

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not " + type(text).__name__)
        room = self.limit - self.kept
        if room > 0:
            piece = text[:room]
            self.parts.append(piece)
            self.kept += len(piece)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    def writable(self):
        return True

    def value(self):
        return "".join(self.parts)


def end_other_processes():
    """SIGKILL every process of this pid namespace but its init and us; return once none of them is left.

    kill(-1) cannot reach outside the namespace, and the kernel makes it atomic with respect to fork, so a
    fork loop cannot outrun it. We reap our own children; orphans belong to the namespace's init, which reaps
    them, so for those we wait until /proc (this namespace's) shows nothing but zombies.
    """
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:  # ESRCH: nothing else was running (the usual case, and the fast one)
        return
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    me = os.getpid()
    deadline = time.monotonic() + 5.0  # past it the host's own checks take over
    while time.monotonic() < deadline:
        if not any(name.isdigit() and int(name) not in (1, me) and not is_zombie(name) for name in os.listdir("/proc")):
            return
        time.sleep(0.001)


def is_zombie(pid):
    try:
        with open("/proc/%s/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return True  # already gone
    return stat[stat.rindex(b")") + 2:][:1] in (b"Z", b"X")


class Server:
    def __init__(self, out_fd, output_chars, own_pidns):
        self.out_fd = out_fd
        self.output_chars = output_chars
        self.own_pidns = own_pidns
        self.count = 0
        self.pid = os.getpid()
        self.running = False
        self.ns = {"__name__": "__main__", "__builtins__": builtins}

    def send(self, obj):
        data = (json.dumps(obj) + "\n").encode("utf-8", "replace")
        view = memoryview(data)
        while view:
            view = view[os.write(self.out_fd, view):]

    def on_alarm(self, signum, frame):
        if self.running:
            raise ExecutionTimeout()

    def run(self, code, timeout):
        self.count += 1
        filename = "<cell %d>" % self.count
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        out, err = CappedWriter(self.output_chars), CappedWriter(self.output_chars)
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        result, error, timed_out = None, None, False
        try:
            try:
                tree = ast.parse(code, filename, "exec")
                last = None
                if tree.body and isinstance(tree.body[-1], ast.Expr):
                    last = ast.Expression(tree.body.pop().value)
                body = compile(tree, filename, "exec")
                final = compile(last, filename, "eval") if last is not None else None
                self.running = True
                signal.setitimer(signal.ITIMER_REAL, max(float(timeout), 0.001))
                try:
                    exec(body, self.ns)
                    value = eval(final, self.ns) if final is not None else None
                finally:
                    self.running = False
                    signal.setitimer(signal.ITIMER_REAL, 0)
                if value is not None:
                    text = repr(value)
                    result = text if len(text) <= self.output_chars else text[: self.output_chars] + "..."
            except ExecutionTimeout:
                timed_out = True
                error = {"name": "TimeoutError", "value": "execution exceeded the %g s timeout" % float(timeout),
                         "traceback": "TimeoutError: execution exceeded the %g s timeout" % float(timeout)}
            except BaseException as exc:  # the cell's own exception, SystemExit included
                tb = exc.__traceback__
                while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell"):
                    tb = tb.tb_next
                lines = traceback.format_exception(type(exc), exc, tb)
                error = {"name": type(exc).__name__, "value": str(exc)[:2000], "traceback": "".join(lines)[-8000:]}
        finally:
            sys.stdout, sys.stderr = saved
            if os.getpid() != self.pid:  # a child the cell forked finished the cell's code: it must not serve
                os._exit(0)
        if self.own_pidns:
            end_other_processes()
        return {"stdout": out.value(), "stderr": err.value(), "result": result, "error": error,
                "execution_count": self.count, "truncated_chars": out.dropped + err.dropped}

    def handle(self, req):
        op = req.get("op")
        if op == "exec":
            return self.run(str(req.get("code", "")), req.get("timeout", 30.0))
        if op == "write":
            path = str(req["path"])
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            with open(path, "wb") as f:
                f.write(base64.b64decode(req["data"]))
            return {}
        if op == "read":
            with open(str(req["path"]), "rb") as f:
                data = f.read(READ_LIMIT + 1)
            if len(data) > READ_LIMIT:
                raise ValueError("file larger than %d bytes" % READ_LIMIT)
            return {"data": base64.b64encode(data).decode()}
        raise ValueError("unknown op %r" % (op,))


def main():
    args = sys.argv[1:]
    own_pidns = "--own-pidns" in args
    output_chars = int([a for a in args if not a.startswith("--")][0])
    commands = os.fdopen(os.dup(0), "rb")
    out_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    sys.stdin = open(os.devnull)
    builtins.exit = builtins.quit = sys.exit  # -S skips site, which defines them
    server = Server(out_fd, output_chars, own_pidns)
    signal.signal(signal.SIGALRM, server.on_alarm)
    server.send({"ready": True, "pid": os.getpid()})
    for line in commands:
        try:
            req = json.loads(line)
            rid = req.get("id")
        except ValueError:
            continue
        try:
            reply = server.handle(req)
        except BaseException as exc:
            reply = {"error": {"name": type(exc).__name__, "value": str(exc)[:2000], "traceback": ""}}
        reply["id"] = rid
        server.send(reply)


if __name__ == "__main__":
    main()
