"""Run the compose checks; print each with its result and time; exit 1 on any failure."""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from deploycheck import drive, host, images
from deploycheck.stack import CommandFailed, Compose, env_file, free_port


class Report:
    """Each check's name, result and seconds, printed as it ends."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float]] = []
        self.failed = False

    def log(self, message: str) -> None:
        """A progress line."""
        print(f"deploycheck: {message}", flush=True)

    def check(self, name: str, action: Callable[[], object]) -> None:
        """Run one check; a failure is recorded and stops the run (later checks build on it)."""
        start = time.monotonic()
        try:
            detail = action()
        except Exception as exc:
            self.rows.append((name, f"FAILED: {exc}", time.monotonic() - start))
            self.failed = True
            self.log(f"FAILED  {name}: {exc}")
            raise
        result = f"ok ({detail})" if isinstance(detail, str) and detail else "ok"
        self.rows.append((name, result, time.monotonic() - start))
        self.log(f"{result:<6}  {name}  {self.rows[-1][2]:.1f} s")

    def print(self) -> None:
        """The summary table."""
        print("\n== deploycheck summary")
        for name, result, seconds in self.rows:
            print(f"{seconds:7.1f} s  {name}: {result}")
        total = sum(seconds for _, _, seconds in self.rows)
        print(f"{total:7.1f} s  total, {'FAILED' if self.failed else 'all passed'}")


def checks(report: Report, work: Path) -> None:
    """Images, then the README's compose commands and the drive between them."""
    check = report.check
    check("base image (debootstrap, cached under /var/cache)", images.base_image)
    variables: dict[str, str] = {}
    check("stand-in images (deploy/ci-images)", lambda: variables.update(images.build_stand_ins()))
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    env = work / "env"
    env.write_text(
        env_file(
            {
                **variables,
                "STORE_IMAGE": "store-ci/store:latest",
                "GATEWAY_PUBLISH_ADDRESS": "127.0.0.1",
                "GATEWAY_PORT": str(port),
                "GATEWAY_PUBLIC_URL": public_url,
                # bench's return URLs (drive.py) point to the test shop front end.
                "GATEWAY_RETURN_URL_HOSTS": "shop.example",
                # As deploy/compose.env.example documents: the dev pay page over plain HTTP.
                "PAYMENTS_PROVIDER": "dev",
                "GATEWAY_COOKIE_SECURE": "false",
            }
        )
    )
    compose = Compose(f"storeci{secrets.token_hex(3)}", env, work / "compose.log")
    shop = drive.Shop(port, public_url)
    try:
        check("up -d --build --wait (build the store image, start healthy)",
              lambda: compose.step("up -d --build --wait") and None)  # fmt: skip
        check("products in two locales", shop.products_in_two_locales)
        check("anonymous cart with its cookie", shop.anonymous_cart)
        check("checkout -> pay (dev provider) -> order paid", shop.checkout_pay_paid)
        check("/readyz, /metrics, /asyncapi", shop.operations_endpoints)

        def restart() -> None:
            compose.step("restart cart orders")
            shop.wait_ready()
            shop.everything_still_there()

        check("restart cart orders: cart and order still there", restart)

        def down_up() -> None:
            compose.step("down")
            compose.step("up -d --wait")
            shop.everything_still_there()

        check("down, up --wait: cart (Redis AOF) and order still there", down_up)

        def failed_job() -> None:
            broken = {"ONE_OFF_PRODUCTS_AVAILABLE": "{not json"}
            try:
                compose("up", "-d", "--wait", env=broken)
            except CommandFailed as exc:
                drive.expect("setupproducts" in str(exc), f"failed, but not on the job: {exc}")
            else:
                raise drive.CheckFailed("up --wait exited 0 although setupproducts failed")
            shop.wait_ready()
            shop.everything_still_there()

        check("up --wait exits 1 on a failed setupproducts; the shop stays open", failed_job)

        def scaled() -> str:
            compose.step("up -d --wait --scale cart=2 --scale orders=2")
            running = compose("ps", "--format", "{{.Service}}", "cart", "orders").split()
            drive.expect(sorted(running) == ["cart", "cart", "orders", "orders"], f"ps: {running}")
            shop.requests_served()
            for _ in range(3):
                shop.checkout_pay_paid()
            shop.everything_still_there()
            queues = compose("exec", "-T", "rabbitmq", "rabbitmqctl", "list_queues", "-q",
                             "name", "consumers", "messages")  # fmt: skip
            consumers_of = {}
            for line in queues.splitlines():
                name, consumers, messages = [*line.split(), "", "", ""][:3]
                consumers_of[name] = consumers
                if name.endswith(".dlq"):
                    drive.expect(messages == "0", f"{name}: {messages} dead letters")
            for name in ("store.cart", "store.orders"):
                drive.expect(consumers_of.get(name) == "2", f"{name}: consumers {consumers_of}")
            return drive.events_handled_once(compose.sql)

        check("--scale cart=2 --scale orders=2: served, each event handled once", scaled)
    finally:

        def down_v() -> None:
            compose.step("down -v")
            left = host.run("docker", "volume", "ls", "-q", "--filter",
                            f"label=com.docker.compose.project={compose.project}").stdout  # fmt: skip
            drive.expect(not left.strip(), f"volumes left: {left}")

        check("down -v", down_v)
    unused = compose.unused_readme_commands()
    check(
        "every README compose line was run", lambda: drive.expect(not unused, f"not run: {unused}")
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: `python -m deploycheck`."""
    parser = argparse.ArgumentParser(prog="python -m deploycheck", description=__doc__)
    parser.parse_args(argv)
    report = Report()
    start = time.monotonic()
    try:
        with host.docker_daemon(report.log), tempfile.TemporaryDirectory() as work:
            try:
                checks(report, Path(work))
            except Exception as exc:
                report.failed = True
                print(f"deploycheck: stopped: {exc.__class__.__name__}: {exc}", file=sys.stderr)
                log = Path(work) / "compose.log"
                if log.exists():
                    print(
                        "\n== compose log (tail)\n" + "\n".join(log.read_text().splitlines()[-60:])
                    )
    except host.Refused as exc:
        print(f"deploycheck: refused: {exc}", file=sys.stderr)
        return 2
    report.print()
    print(f"{time.monotonic() - start:7.1f} s  wall clock, daemon start and stop included")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
