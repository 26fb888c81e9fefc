"""`make conformance`: Tempest's compute (or network) API tests against a fake-driver cloud.

Installs tempest==47.0.0 in a venv of its own under the state dir, starts a cloud
of separate processes with three compute hosts, provisions Tempest's accounts and
two images through the cloud's own APIs, writes tempest.conf for the profile, runs
`tempest run --regex '^tempest\\.api\\.compute' --concurrency 2` (the network
profile: the network API's tests of what it serves, one at a time), and holds the
results to passing-PROFILE.txt: any test on it that does not pass fails the run.
Everything it started is stopped on the way out, Ctrl-C included. The run's
tempest.conf, logs, subunit stream and the cloud's logs stay under the state dir.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import IO

from tests.conformance import cloud, profiles, results

TEMPEST = "tempest==47.0.0"
LIST_HEADER = ("# Tempest 47 tests that pass against Novalet under the '{profile}' profile\n"
               "# (tests/conformance, docs/conformance.md). It only grows: add what newly\n"
               "# passes with `make conformance GROW=1`; never remove a line.\n")


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def tempest_venv(state: Path) -> Path:
    """The venv with Tempest (made once, again if the pin changes)."""
    venv = state / "venv"
    stamp = venv / f".installed-{TEMPEST}"
    if not stamp.exists():
        step(f"installing {TEMPEST} in {venv}")
        shutil.rmtree(venv, ignore_errors=True)
        python = shutil.which("python3") or sys.executable
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q",
                        "--disable-pip-version-check", TEMPEST], check=True)
        stamp.touch()
    return venv


def provision(url: str, workdir: Path, profile: str) -> Path:
    """Accounts, quotas, images and tempest.conf; the conf's path."""
    step("provisioning the accounts and two public qcow2 images")
    api = cloud.Provisioner(url)
    api.accounts()
    images = (api.image("tempest-cirros-like", cloud.tiny_qcow2(workdir / "one.qcow2")),
              api.image("tempest-cirros-like-alt", cloud.tiny_qcow2(workdir / "two.qcow2")))
    (workdir / "accounts.yaml").write_text(cloud.accounts_yaml())
    run = profiles.Run(workdir=workdir, identity_url=f"{url}/identity/v3",
                       admin_password=cloud.ADMIN_PASSWORD, images=images,
                       max_microversion=api.max_microversion(),
                       public_network=api.external_network(), fixed_network="private",
                       extensions=api.network_extensions())
    for directory in ("etc", "logs", "locks"):
        (workdir / directory).mkdir(exist_ok=True)
    conf = workdir / "etc" / "tempest.conf"
    conf.write_text(profiles.tempest_conf(profile, run))
    return conf


def run_tempest(venv: Path, workdir: Path, conf: Path, args: argparse.Namespace) -> int:
    """tempest run in `workdir`, its output echoed (or, --quiet, a count a minute)
    and kept in tempest-output.log; killed with its workers if we are stopped."""
    command = [str(venv / "bin" / "tempest"), "run", "--config-file", str(conf),
               "--regex", args.regex, "--concurrency", str(args.concurrency)]
    step(" ".join(command[1:]))
    with open(workdir / "tempest-output.log", "wb") as log:
        proc = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _relay(proc.stdout, log, args.quiet, time.monotonic() + args.timeout)
            return proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _relay(stream: IO[bytes] | None, log: IO[bytes], quiet: bool, deadline: float) -> None:
    assert stream is not None
    done, last = 0, time.monotonic()
    for line in stream:
        log.write(line)
        done += line.lstrip().startswith(b"{")  # stestr's "{worker} test ... ok" lines
        if not quiet:
            sys.stdout.write(line.decode(errors="replace"))
            sys.stdout.flush()
        elif time.monotonic() - last > 60:
            last = time.monotonic()
            print(f"    {done} tests done", flush=True)
        if time.monotonic() > deadline:
            raise TimeoutError("tempest run took longer than --timeout")


def list_tests(venv: Path, workdir: Path, conf: Path, regex: str) -> list[str]:
    """The ids the run will take (a class skipped or failed in its setUpClass
    reports one row: these name its tests)."""
    if not (workdir / ".stestr").exists():  # listing needs the repository the run uses
        subprocess.run([str(venv / "bin" / "stestr"), "init"], cwd=workdir, check=True,
                       stdout=subprocess.DEVNULL)
    out = subprocess.run([str(venv / "bin" / "tempest"), "run", "--config-file", str(conf),
                          "--regex", regex, "--list-tests"], cwd=workdir, capture_output=True,
                         text=True, check=True).stdout
    listed = [line for line in out.splitlines() if line.startswith("tempest.")]
    (workdir / "tests-listed.txt").write_text("".join(f"{t}\n" for t in listed))
    return listed


def write_failures(workdir: Path) -> dict[str, list[str]]:
    """failures.txt: each failed test's error and refused requests, grouped by
    cause; the groups (cause -> tests)."""
    output = (workdir / "tempest-output.log").read_text(errors="replace")
    details = results.failure_details(output)
    log = workdir / "logs" / "tempest.log"
    results.add_fixture_requests(details, log.read_text(errors="replace") if log.exists() else "")
    groups = results.grouped(details)
    lines = []
    for cause, tests in groups.items():
        lines.append(f"## {len(tests)} x {cause}")
        for test in tests:
            lines += [f"- {test}", *(f"    {d}" for d in details[test])]
        lines.append("")
    (workdir / "failures.txt").write_text("\n".join(lines))
    return groups


def collect(venv: Path, workdir: Path) -> dict[str, str]:
    """The last run's results (its subunit stream kept as results.subunit)."""
    stream = subprocess.run([str(venv / "bin" / "stestr"), "last", "--subunit"], cwd=workdir,
                            capture_output=True, check=False).stdout
    (workdir / "results.subunit").write_bytes(stream)
    table = subprocess.run([str(venv / "bin" / "subunit2csv")], input=stream,
                           capture_output=True, check=False).stdout.decode(errors="replace")
    (workdir / "results.csv").write_text(table)
    return results.parse_csv(table)


def report(verdict: results.Verdict, profile: str, workdir: Path, grow: bool) -> int:
    """Print the verdict; 1 when a listed test did not pass."""
    groups = write_failures(workdir)
    if groups:
        print(f"\nFailures by cause (tests or class fixtures; details in "
              f"{workdir / 'failures.txt'}):")
        print("".join(f"  {len(tests):3} x {cause}\n" for cause, tests in groups.items()), end="")
    (workdir / "nova-gap.txt").write_text("".join(f"{t}\n" for t in verdict.nova_gap))
    if verdict.newly_passing:
        print(f"\nNewly passing ({len(verdict.newly_passing)}; `make conformance "
              f"PROFILE={profile} GROW=1` adds them to the list):")
        print("".join(f"  + {t}\n" for t in verdict.newly_passing), end="")
    print(f"\nNova 34 tests not passing here ({len(verdict.nova_gap)}; "
          f"also in {workdir / 'nova-gap.txt'}):")
    print("".join(f"  {verdict.status_of(t):8} {t}\n" for t in verdict.nova_gap), end="")
    if grow:
        added = results.grow(results.passing_list(profile), verdict,
                             LIST_HEADER.format(profile=profile))
        print(f"\nadded {added} tests to {results.passing_list(profile)}")
    if verdict.regressions:
        print(f"\nFAILED: {len(verdict.regressions)} tests on "
              f"{results.passing_list(profile).name} did not pass:")
        print("".join(f"  {verdict.status_of(t):8} {t}\n" for t in verdict.regressions), end="")
    print(f"\nTempest {'network' if profile == 'network' else 'compute'}, profile {profile}:")
    print("".join(f"  {line}\n" for line in verdict.summary()), end="")
    return 1 if verdict.regressions else 0


def conformance(args: argparse.Namespace) -> int:
    state = args.state.resolve()
    workdir = state / f"run-{args.profile}"
    venv = tempest_venv(state)
    started = time.monotonic()
    if not args.report:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        run_on_a_cloud(venv, workdir, args)
    statuses = results.expand(collect(venv, workdir),
                              (workdir / "tests-listed.txt").read_text().split())
    if not statuses:
        print(f"no results: see {workdir / 'tempest-output.log'}", file=sys.stderr)
        return 1
    required = results.read_list(results.passing_list(args.profile)) - profiles.NOVA_NETWORK_ONLY
    if args.regex != profiles.REGEXES[args.profile]:  # a narrower run answers for
        required &= set(statuses)                      # the listed tests it ran
    nova = (results.read_list(results.NOVA_PASSED)
            if profiles.REGEXES[args.profile] == profiles.COMPUTE_REGEX else set())
    verdict = results.Verdict(statuses, required, nova)
    code = report(verdict, args.profile, workdir, args.grow)
    print(f"  wall time {time.monotonic() - started:.0f} s; logs, tempest.conf and "
          f"results.subunit in {workdir}")
    return code


def run_on_a_cloud(venv: Path, workdir: Path, args: argparse.Namespace) -> None:
    started = time.monotonic()
    step(f"starting the cloud: api, conductor, scheduler, {', '.join(cloud.PROXIES)} and "
         f"{len(cloud.COMPUTES)} fake compute hosts (logs in {workdir / 'cloud'})")
    with cloud.fake_cloud(workdir / "cloud") as deployment:
        conf = provision(deployment.url, workdir, args.profile)
        listed = list_tests(venv, workdir, conf, args.regex)
        step(f"{len(listed)} tests to run")
        code = run_tempest(venv, workdir, conf, args)
        step(f"tempest run exited {code} after {time.monotonic() - started:.0f} s; "
             "stopping the cloud")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(profiles.PROFILES), default="nova")
    parser.add_argument("--state", type=Path, default=cloud.REPO / ".state" / "conformance",
                        help="venv, run dirs and logs (default .state/conformance)")
    parser.add_argument("--regex", help="which Tempest tests (default: the profile's: all "
                        "of tempest.api.compute, or for network the network API's tests of "
                        "what it serves; a narrower one still checks the list)")
    parser.add_argument("--concurrency", type=int, help="Tempest's workers (default 2; "
                        "1 for the network profile: its tests carve subnets out of one "
                        "range in separate projects, and CIDRs may not overlap across "
                        "networks here yet)")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds before the Tempest run is stopped")
    parser.add_argument("--grow", action="store_true",
                        help="add the tests that newly pass to passing-PROFILE.txt")
    parser.add_argument("--report", action="store_true",
                        help="no new run: judge the profile's last one again (with --grow, "
                             "to add what it passed to the list)")
    parser.add_argument("--quiet", action="store_true",
                        help="a count of finished tests each minute, not each result")
    args = parser.parse_args()
    args.regex = args.regex or profiles.REGEXES[args.profile]
    args.concurrency = args.concurrency or (1 if args.profile == "network" else 2)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    try:
        return conformance(args)
    except KeyboardInterrupt:
        print("\ninterrupted: the cloud and Tempest were stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
