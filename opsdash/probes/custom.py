"""The planner of custom checks: ``checks: {NAME: {...}}`` on any service, datastore or worker
becomes one check ``<component>.<NAME>`` per entry, of the kind its key names.

Each kind's probe lives in its own module, imported when a registry uses that kind (a registry
without DNS checks never loads the DNS client):

=========== ======================================== ===============================
key         probe                                    figures (``details``)
=========== ======================================== ===============================
plugin      :mod:`opsdash.probes.plugin`             exit code, perfdata, long output
tcp         :mod:`opsdash.probes.tcp`                connect time, answer excerpt
tls         :mod:`opsdash.probes.tcp`                certificate expiry, issuer
dns         :mod:`opsdash.probes.dns`                answers, missing expected ones
http        :mod:`opsdash.probes.http_check`         status, failed conditions
heartbeat   :mod:`opsdash.probes.heartbeat`          last beat, its age
=========== ======================================== ===============================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from opsdash.probe_plan import Planned, bind, join_url
from opsdash.redact import redact_url
from opsdash.registry.model import (
    CheckOptions,
    CustomCheckBase,
    DnsCheck,
    HeartbeatCheck,
    HttpCheck,
    PluginCheck,
    Registry,
    Service,
    TcpCheck,
    TlsCheck,
)
from opsdash.registry.targets import parse_host_port
from opsdash.status import Status

Kind = Callable[[str, str, CheckOptions, "CustomCheckBase", Registry], Planned]


def plan(name: str, entry: CheckOptions, registry: Registry) -> Iterator[Planned]:
    """One check per entry of ``entry.checks``, with its own timeout, interval and tags."""
    for check, spec in entry.custom_checks.items():
        planned = _KINDS[spec.kind](name, check, entry, spec, registry)
        yield Planned(
            check=check,
            kind=planned.kind,
            target=planned.target,
            probe=planned.probe,
            judge_latency=False,  # only the check's own ``latency:`` applies
            timeout=spec.timeout,
            interval=spec.interval,
            latency=spec.latency,
            tags=spec.tags,
            failure_status=planned.failure_status,
        )


def _plugin(
    name: str, check: str, entry: CheckOptions, spec: CustomCheckBase, registry: Registry
) -> Planned:
    from opsdash.probes.plugin import PluginTarget, probe_plugin, resolve

    assert isinstance(spec, PluginCheck)
    path = resolve(spec.plugin, registry.base_dir)
    timeout = spec.timeout or entry.timeout or registry.defaults.timeout
    target = PluginTarget(path=path, args=spec.args, env=dict(spec.env), timeout=timeout)
    # The target shows the path only: arguments may carry secrets (``-p ${PASSWORD}``).
    return Planned(
        check, "plugin", str(path), bind(probe_plugin, target), failure_status=Status.UNKNOWN
    )


def _tcp(
    name: str, check: str, entry: CheckOptions, spec: CustomCheckBase, registry: Registry
) -> Planned:
    from opsdash.probes.tcp import TcpTarget, probe_tcp

    assert isinstance(spec, TcpCheck)
    host, port = parse_host_port(spec.tcp)
    target = TcpTarget(
        host=host,
        port=port,
        send=None if spec.send is None else spec.send.encode("utf-8"),
        expect=None if spec.expect is None else spec.expect.encode("utf-8"),
    )
    return Planned(check, "tcp", f"tcp://{spec.tcp}", bind(probe_tcp, target))


def _tls(
    name: str, check: str, entry: CheckOptions, spec: CustomCheckBase, registry: Registry
) -> Planned:
    from opsdash.probes.tcp import TlsTarget, probe_tls

    assert isinstance(spec, TlsCheck)
    host, port = parse_host_port(spec.tls)
    target = TlsTarget(
        host=host,
        port=port,
        server_name=spec.server_name or host,
        verify=spec.verify,
        starttls=spec.starttls,
        cert_expiry=spec.cert_expiry or registry.defaults.cert_expiry,
    )
    return Planned(check, "tls", f"tls://{spec.tls}", bind(probe_tls, target))


def _dns(
    name: str, check: str, entry: CheckOptions, spec: CustomCheckBase, registry: Registry
) -> Planned:
    from opsdash.probes.dns import DnsTarget, probe_dns

    assert isinstance(spec, DnsCheck)
    server = None if spec.server is None else parse_host_port(spec.server, default_port=53)
    target = DnsTarget(spec.dns, spec.type, spec.expect, server)
    shown = f"dns://{spec.server}/{spec.dns}" if spec.server else f"dns:{spec.dns}"
    return Planned(check, "dns", f"{shown} ({spec.type})", bind(probe_dns, target))


def _http(
    name: str, check: str, entry: CheckOptions, spec: CustomCheckBase, registry: Registry
) -> Planned:
    from opsdash.probes.http import HttpTarget
    from opsdash.probes.http_check import HttpCheckTarget, probe_http_check

    assert isinstance(spec, HttpCheck)
    # A path is joined to the service's url (the registry refuses one on other components).
    base = entry.url if isinstance(entry, Service) else ""
    url = join_url(base, spec.http)
    headers = {**entry.headers, **spec.headers} if isinstance(entry, Service) else spec.headers
    request = HttpTarget(
        url=url,
        headers=dict(headers),
        verify=spec.tls_verify and (not isinstance(entry, Service) or entry.tls_verify),
        max_body=registry.defaults.max_body,
    )
    target = HttpCheckTarget(request, spec.expect)
    return Planned(check, "http", redact_url(url), bind(probe_http_check, target))


def _heartbeat(
    name: str, check: str, entry: CheckOptions, spec: CustomCheckBase, registry: Registry
) -> Planned:
    from opsdash.probes.heartbeat import HeartbeatTarget, probe_heartbeat

    assert isinstance(spec, HeartbeatCheck)
    target = HeartbeatTarget(f"{name}.{check}", spec.heartbeat.max_age)
    return Planned(check, "heartbeat", f"heartbeat:{name}.{check}", bind(probe_heartbeat, target))


_KINDS: dict[str, Kind] = {
    "plugin": _plugin,
    "tcp": _tcp,
    "tls": _tls,
    "dns": _dns,
    "http": _http,
    "heartbeat": _heartbeat,
}
"""Custom check kind (its key in the registry) -> the planner of one such check."""
