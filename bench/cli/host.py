"""``posbench host``: the ISO 8583 acquirer host simulator in the foreground."""
from __future__ import annotations

from pathlib import Path

import click

from posbench.cli.common import Command, UsageFailure
from posbench.cli.foreground import in_foreground
from posbench.core.errors import ConfigError


@click.command(cls=Command)
@click.option("--listen", default="127.0.0.1:8583", show_default=True, metavar="HOST:PORT",
              help="address to listen on (the address the unit is pointed at)")
@click.option("--log", "log_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL message log (the [host] log of bench.toml)")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file of [[rule]] tables deciding field 39, delays and drops")
@click.option("--seed", type=int, help="seed for rules with a probability")
def host(listen, log_path, rules_path, seed) -> None:
    """Run the ISO 8583 acquirer host simulator in the foreground until SIGINT/SIGTERM."""
    from posbench.setup.config import split_host_port
    from posbench.render.outputs import check_target
    from posbench.drivers.host.rules import RuleSet
    from posbench.drivers.host.simulator import HostSimulator
    try:
        address = _listen_address(listen, *split_host_port(listen, allow_zero=True))
    except ValueError as exc:
        raise UsageFailure(f"--listen {listen!r}: {exc}") from None
    try:
        check_target(log_path, "--log")
        rules = RuleSet.from_toml(rules_path) if rules_path else RuleSet([])
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    in_foreground(lambda: HostSimulator(address, rules, log_path=log_path, seed=seed),
                   lambda sim_host: print(f"host simulator listening on {sim_host.address[0]}:{sim_host.address[1]}; "
                                          f"log {log_path}", flush=True),
                   "the host simulator", "host simulator stopped")


def _listen_address(listen: str, host_name: str, port: int) -> tuple[str, int]:
    """The IPv4 address ``--listen`` names, if this machine can listen there (``UsageFailure``
    otherwise: an unknown name, an address of another machine, a port reserved for root).
    A port in use is left to the simulator's bind: it is a bench failure, not a usage error."""
    import errno
    import socket
    try:
        ip = str(socket.getaddrinfo(host_name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])  # AF_INET: a str
    except socket.gaierror as exc:
        raise UsageFailure(f"--listen {listen!r}: {host_name} has no IPv4 address ({exc.strerror}); the "
                           "host simulator listens on IPv4: name an address of this machine, e.g. "
                           "127.0.0.1, or 0.0.0.0 for all") from None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise UsageFailure(f"--listen {listen!r}: {ip} is not an address of this machine "
                                   "(`ip -brief address` lists them; 0.0.0.0 listens on all)") from None
            if exc.errno == errno.EACCES:
                raise UsageFailure(f"--listen {listen!r}: port {port} is reserved for root here; "
                                   "use a port from 1024 up and point the unit at it") from None
    return ip, port
