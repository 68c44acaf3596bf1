"""The trusted test harness: runs a dataset's assert-style tests in a sandbox the submission never runs in.

Loaded (stdlib only, never imported by the host) into a persistent sandboxed interpreter that only ever holds the
dataset's own code: its test statements, prelude, prompt helpers and reference solution. The functions under
test are stubs. ``record`` runs the tests against the reference solution and writes down, per test, every call
the tests make (plain-data arguments, ``_plaindata``'s tagged form) with the reference's answers; it then replays
them against those answers to prove the test replays deterministically, and reruns the tests with every answer
replaced by an opaque value (asserts not enforced) to learn which tests' arguments never depend on earlier answers
(those may be sent to the candidate all at once). ``replay`` runs the tests again with the stubs answering from
the candidate's reported results, and returns pass/fail per test: a test passes only if it completes and asked for
exactly the recorded calls, each of which the candidate answered. Random is re-seeded before the prelude and
before every test, so recorded and replayed runs draw the same inputs.
"""

import ast
import builtins
import json
import random
import signal
import sys

from _plaindata import NotPlainData, decode, encode

SEED = 20240101


class HarnessTimeout(BaseException):
    """A test used up its CPU time in the harness."""


class Abort(BaseException):
    """Stops a test whose result is already decided (a BaseException, so test code cannot swallow it)."""


def _on_prof(signum, frame):
    raise HarnessTimeout()


def _builtin_exception(name):
    """The builtin Exception subclass called `name` (what a test may catch), else Exception itself."""
    cls = getattr(builtins, name, None) if isinstance(name, str) else None
    return cls if isinstance(cls, type) and issubclass(cls, Exception) else Exception


def _apply_mutation(args, after):
    """Make the test's own argument objects look as the candidate left them (in-place changes only)."""
    for arg, new in zip(args, after):
        if type(arg) is list and type(new) is list:
            arg[:] = new
        elif type(arg) is dict and type(new) is dict:
            arg.clear()
            arg.update(new)
        elif type(arg) is set and type(new) is set:
            arg.clear()
            arg.update(new)


class Test:
    """The state of one test while it runs: its recorded calls, answers, a cursor and why it failed, if it did."""

    def __init__(self, calls, answers):
        self.calls = calls          # [[name, tagged args, tagged kwargs], ...]
        self.answers = answers      # per call: {"status", "v", "a", "raised", "error"} or None (no result)
        self.cursor = 0
        self.failure = None

    def fail(self, why):
        if self.failure is None:
            self.failure = why
        raise Abort()


def _replay_stub(name, state):
    def stub(*args, **kwargs):
        test = state[0]
        try:
            call = [name, encode(args), encode(kwargs)]
        except NotPlainData as exc:
            test.fail("the test passed %s to %s, which was not recorded" % (exc, name))
        j = test.cursor
        test.cursor += 1
        if j >= len(test.calls) or call != test.calls[j]:
            test.fail("the test asked for %s(...) call %d, which differs from the recorded calls (the candidate's "
                      "earlier answers changed the test's course)" % (name, j + 1))
        answer = test.answers[j] if j < len(test.answers) else None
        if answer is None:
            test.fail("no result for call %d: the candidate process exited, died or ran out of time" % (j + 1))
        status = answer.get("status")
        if status == "ok":
            try:
                value = decode(answer.get("v"))
                if answer.get("a") is not None:
                    _apply_mutation(args, decode(answer["a"]))
            except NotPlainData as exc:
                test.fail("call %d returned malformed data (%s)" % (j + 1, exc))
            return value
        if status == "error" and answer.get("raised") not in (None, "SystemExit"):
            raise _builtin_exception(answer.get("raised"))(str(answer.get("error") or "")[:500])
        test.fail("call %d: %s" % (j + 1, str(answer.get("error") or status)[:500]))

    return stub


def _record_stub(name, state, reference):
    def stub(*args, **kwargs):
        test = state[0]
        fn = reference.get(name)
        if not callable(fn):
            test.fail("the reference solution defines no %s" % name)
        try:
            call = [name, encode(args), encode(kwargs)]
        except NotPlainData as exc:
            test.fail("it passes %s to %s: only plain data can reach the candidate process" % (exc, name))
        before = json.dumps(call[1])
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:
            test.calls.append(call)
            test.answers.append({"status": "error", "raised": type(exc).__name__, "error": str(exc)[:500]})
            raise
        try:
            answer = {"status": "ok", "v": encode(value)}
            after = encode(args)
        except NotPlainData as exc:
            test.fail("%s returns %s: only plain data can come back from the candidate process" % (name, exc))
        if json.dumps(after) != before:
            answer["a"] = after
        test.calls.append(call)
        test.answers.append(answer)
        return decode(answer["v"])  # the same fresh copy a replay returns

    return stub


def _run_tests(job, make_stub, tests_state, compile_test=None):
    """Run the job's tests in one namespace (as ``check`` would); per test: None (passed) or why it failed."""
    compile_test = compile_test or (lambda src, name: compile(src, name, "exec"))
    state = [None]
    ns = {"__name__": "__test__", "__builtins__": builtins}
    timeout = float(job.get("timeout", 3.0))
    old = signal.signal(signal.SIGPROF, _on_prof)
    outcomes = []

    def run(code, test):
        state[0] = test
        signal.setitimer(signal.ITIMER_PROF, timeout)
        try:
            exec(code, ns)
        except Abort:
            pass
        except HarnessTimeout:
            test.failure = test.failure or "the test ran past %g s of CPU time in the harness" % timeout
        except BaseException as exc:
            if type(exc).__name__ == "ExecutionTimeout":  # the interpreter's own wall clock: give up on the job
                raise
            text = "%s: %s" % (type(exc).__name__, str(exc)[:300])
            test.failure = test.failure or (text if not isinstance(exc, AssertionError) else "assertion failed "
                                            + text[len("AssertionError: "):].strip()).strip()
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            state[0] = None

    try:
        setup = Test([], [])
        random.seed(SEED)
        for part in (job.get("helpers", ""), job.get("prelude", "")):
            run(compile(part, "<prelude>", "exec"), setup)
        for name in job["entries"]:
            ns[name] = make_stub(name, state)
        for alias, name in job.get("aliases", {}).items():
            ns[alias] = ns[name]
        for i, src in enumerate(job["tests"]):
            test = tests_state[i]
            if setup.failure is not None:
                test.failure = "the test setup failed: " + setup.failure
            else:
                random.seed(SEED + 1 + i)
                run(compile_test(src, "<test %d>" % i), test)
            outcomes.append(test.failure)
    finally:
        signal.signal(signal.SIGPROF, old)
    return outcomes


class _Opaque:
    """What every call answers in the independence check: absorbs any use, equals nothing, is false."""

    def __eq__(self, other): return False
    def __ne__(self, other): return True
    def __lt__(self, other): return False
    __le__ = __gt__ = __ge__ = __contains__ = __lt__
    def __bool__(self): return False
    def __hash__(self): return 0
    def __len__(self): return 0
    def __iter__(self): return iter(())
    def __float__(self): return 0.0
    def __int__(self): return 0
    __index__ = __int__
    def __repr__(self): return "<answer>"
    def __getattr__(self, name): return self
    def __getitem__(self, key): return self
    def __call__(self, *args, **kwargs): return self
    def __add__(self, other): return self
    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __floordiv__ = __mod__ = __add__
    __pow__ = __rpow__ = __and__ = __or__ = __xor__ = __rand__ = __ror__ = __neg__ = __abs__ = __round__ = __add__


def _opaque_stub(name, state):
    def stub(*args, **kwargs):
        try:
            state[0].calls.append([name, encode(args), encode(kwargs)])
        except NotPlainData:
            state[0].fail("unrecordable")
        return _Opaque()

    return stub


class _AssertsToExpressions(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.copy_location(ast.Expr(node.test), node)


def _without_asserts(src, name):
    tree = _AssertsToExpressions().visit(ast.parse(src))
    return compile(ast.fix_missing_locations(tree), name, "exec")


def _independent(job, recorded):
    """Per test: whether its calls' arguments are the same whatever the earlier calls answer (every answer
    replaced by an opaque value, asserts evaluated but not enforced). Such tests may be sent to the candidate all
    at once; the others go one call at a time, so no argument can reveal an expected answer before it is given."""
    tests = [Test([], []) for _ in job["tests"]]
    _run_tests(job, _opaque_stub, tests, _without_asserts)
    return [t.failure is None and t.calls == r["calls"] for t, r in zip(tests, recorded)]


def record(job):
    """Per test: its calls and the reference's answers, or why it cannot be graded outside the candidate."""
    reference = {"__name__": "solution", "__builtins__": builtins}
    exec(compile(job["reference"], "<reference>", "exec"), reference)
    exec(compile(job.get("prelude", ""), "<prelude>", "exec"), reference)
    tests = [Test([], []) for _ in job["tests"]]
    outcomes = _run_tests(job, lambda name, state: _record_stub(name, state, reference), tests)
    out = []
    for test, failure in zip(tests, outcomes):
        entry = {"calls": test.calls, "answers": test.answers, "unsafe": None}
        if failure is not None:
            entry["unsafe"] = "the reference solution fails it (%s)" % failure[:300]
        out.append(entry)
    # prove each test replays: the same calls, answered with the reference's answers, must pass again
    again = replay(dict(job, calls=[e["calls"] for e in out], answers=[e["answers"] for e in out]))
    for entry, verdict in zip(out, again):
        if entry["unsafe"] is None and not verdict["passed"]:
            entry["unsafe"] = "it does not replay deterministically (%s)" % (verdict["error"] or "")[:300]
    for entry, independent in zip(out, _independent(job, out)):
        entry["batch"] = independent
    return out


def replay(job):
    """Per test: {"passed", "error"} with the stubs answering from ``job["answers"]``."""
    tests = [Test(calls, answers) for calls, answers in zip(job["calls"], job["answers"])]
    outcomes = _run_tests(job, _replay_stub, tests)
    return [{"passed": failure is None, "error": failure} for failure in outcomes]


def _agentgym_harness(text):
    """The entry point the host calls: one JSON job in, one JSON answer out."""
    job = json.loads(text)
    saved = sys.stdout, sys.stderr
    try:
        result = record(job) if job["op"] == "record" else replay(job)
    finally:
        sys.stdout, sys.stderr = saved
    return json.dumps({"op": job["op"], "tests": result})
