"""Fuzzing the bench power parsers: the driver's Korad answer parsers, the Korad emulator's
terminator-less command parser and the LCUS relay frame parser (hypothesis)."""
from __future__ import annotations

import random
import re
import time

import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posbench.core.errors import BenchError
from posbench.sim.devices.korad import KoradEmulator, KoradParser
from posbench.sim.devices.lcus_relay import LcusParser
from posbench.sim.unit.power import UnitPower
from posbench.drivers.power import KoradSupply, SupplyProtocolError
from posbench.drivers.power.korad import parse_amps, parse_identity, parse_status, parse_volts
from posbench.drivers.power.lcus_relay import checksum, frame

FUZZ = settings(max_examples=300, deadline=None)
COMMAND_CHARS = set(b"0123456789.:?*ABCDEFGHIJKLMNOPQRSTUVWXYZ")
NOISE = st.binary(max_size=6).map(lambda b: bytes(c for c in b if c not in COMMAND_CHARS))


# -- the driver's answer parsers -------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=12))
def test_parse_volts_accepts_exactly_nn_nn(raw):
    try:
        volts = parse_volts(raw)
    except SupplyProtocolError as exc:
        assert isinstance(exc, BenchError) and len(str(exc)) < 200
        assert not re.fullmatch(rb"\d{2}\.\d{2}", raw)
    else:
        assert re.fullmatch(rb"\d{2}\.\d{2}", raw) and f"{volts:05.2f}".encode() == raw


@FUZZ
@given(st.binary(max_size=12))
def test_parse_amps_accepts_exactly_n_nnn(raw):
    try:
        amps = parse_amps(raw)
    except SupplyProtocolError:
        assert not re.fullmatch(rb"\d\.\d{3}", raw)
    else:
        assert f"{amps:.3f}".encode() == raw


@FUZZ
@given(st.floats(0, 30), st.floats(0, 5))
def test_formatted_setpoints_round_trip(volts, amps):
    assert parse_volts(f"{volts:05.2f}".encode()) == round(volts, 2)
    assert parse_amps(f"{amps:.3f}".encode()) == round(amps, 3)


@FUZZ
@given(st.binary(max_size=3))
def test_parse_status_one_byte_only(raw):
    try:
        st_ = parse_status(raw)
    except SupplyProtocolError:
        assert len(raw) != 1
    else:
        assert len(raw) == 1 and st_.raw == raw[0]
        assert st_.cv == bool(raw[0] & 1) and st_.output == bool(raw[0] & 0x40)


@FUZZ
@given(st.one_of(st.binary(max_size=80),
                 st.from_regex(r"\A[A-Z]{2,8} [A-Z0-9-]{3,10}( V[0-9]\.[0-9])?( SN:[0-9]{8})?\Z")
                 .map(str.encode)))
def test_parse_identity_printable_and_shaped(raw):
    try:
        ident = parse_identity(raw)
    except SupplyProtocolError:
        assert (not raw or len(raw) > 64 or any(not 0x20 <= b < 0x7F for b in raw)
                or not any(chr(b).isalpha() for b in raw))
    else:
        assert ident.text.encode() == raw and ident.maker


def test_identity_fields():
    full = parse_identity(b"KORAD KA3005P V5.5 SN:03512345")
    assert (full.maker, full.model, full.version, full.serial) == ("KORAD", "KA3005P", "V5.5", "03512345")
    tenma = parse_identity(b"TENMA 72-2540 V2.1")
    assert (tenma.maker, tenma.model, tenma.version, tenma.serial) == ("TENMA", "72-2540", "V2.1", None)
    old = parse_identity(b"KORADKA3005PV2.0")
    assert (old.maker, old.model) == ("KORADKA3005PV2.0", None)


# -- the emulator's command parser -------------------------------------------------------------------

KNOWN = {"*IDN?", "STATUS?", "VSET?", "ISET?", "VOUT?", "IOUT?", "VSET", "ISET", "OUT", "OCP",
         "OVP", "BEEP", "RCL", "SAV"}

driver_commands = st.one_of(
    st.sampled_from(["*IDN?", "STATUS?", "VSET1?", "ISET1?", "VOUT1?", "IOUT1?", "OUT1", "OUT0",
                     "OCP1", "OCP0", "OVP0", "BEEP1", "RCL3", "SAV5"]),
    st.floats(0, 30).map(lambda v: f"VSET1:{v:05.2f}"),
    st.floats(0, 5).map(lambda a: f"ISET1:{a:.3f}"))


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def parse_all(data: bytes) -> list:
    """Commands in ``data`` sent at once and followed by silence."""
    parser = KoradParser()
    return parser.feed(data, 0.0) + parser.idle(1.0)


@FUZZ
@given(st.lists(st.binary(max_size=24), max_size=8))
def test_korad_parser_never_raises_and_yields_only_commands(pieces):
    parser = KoradParser()
    out, t = [], 0.0
    for piece in pieces:
        t += 0.001
        out += parser.feed(piece, t)
    out += parser.idle(t + 1.0)
    for cmd in out:
        assert cmd.name in KNOWN
        assert [(c.name, c.value) for c in parse_all(cmd.text.encode("latin-1"))] == \
            [(cmd.name, cmd.value)]


@FUZZ
@given(st.lists(st.tuples(NOISE, driver_commands), min_size=1, max_size=10),
       st.lists(st.integers(0, 400), max_size=6))
def test_korad_parser_recovers_every_command_through_noise_and_splits(items, cuts):
    stream = b"".join(noise + cmd.encode() for noise, cmd in items)
    parser = KoradParser()
    out = []
    for i, piece in enumerate(chunks(stream, cuts)):
        out += parser.feed(piece, 0.001 * i)
    out += parser.idle(10.0)
    assert [c.text for c in out] == [cmd for _, cmd in items]


@FUZZ
@given(st.from_regex(r"\AVSET1:[0-9]{1,2}(\.[0-9]{0,2})?\Z"))
def test_short_numbers_complete_after_silence(text):
    parser = KoradParser()
    out = parser.feed(text.encode(), 0.0)
    assert out == [] or len(text) == len("VSET1:12.00")  # only a full-width number ends at once
    out = out or parser.idle(0.05)
    assert len(out) == 1 and out[0].value == float(text[6:])


def test_emulator_ignores_garbage_like_the_real_unit():
    power = UnitPower(0.3)
    emu = KoradEmulator(power).start()
    supply = KoradSupply(emu.path, timeout=0.3)
    rng = random.Random(1)
    try:
        with serial.serial_for_url(emu.path, timeout=0.05) as raw:
            for _ in range(20):
                raw.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))))
                raw.flush()
                time.sleep(0.005)
        time.sleep(0.1)  # past the parser's silence timeout
        before = len(emu.commands)
        assert supply.identify().model == "KA3005P"
        assert supply.voltage_setpoint() == emu.volts
        assert [t for _, t in emu.commands[before:]] == ["*IDN?", "VSET1?"]
        assert emu.parser.dropped > 0
    finally:
        supply.close()
        emu.stop()


# -- the relay frame parser ---------------------------------------------------------------------------

RELAY_NOISE = st.binary(max_size=6).map(lambda b: b.replace(b"\xa0", b""))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=16), max_size=8))
def test_lcus_parser_never_raises_and_frames_are_in_the_input(pieces):
    parser = LcusParser()
    stream = b"".join(pieces)
    out = []
    for i, piece in enumerate(pieces):
        out += parser.feed(piece, 0.001 * i)
    parser.idle(10.0)
    for ch, op in out:
        assert bytes((0xA0, ch, op, checksum(ch, op))) in stream


@FUZZ
@given(st.lists(st.tuples(RELAY_NOISE, st.integers(1, 8), st.booleans()), min_size=1, max_size=8),
       st.lists(st.integers(0, 200), max_size=5))
def test_lcus_parser_recovers_frames_through_noise(items, cuts):
    stream = b"".join(noise + frame(ch, on) for noise, ch, on in items)
    parser = LcusParser()
    out = []
    for i, piece in enumerate(chunks(stream, cuts)):
        out += parser.feed(piece, 0.001 * i)
    assert out == [(ch, int(on)) for _, ch, on in items]


@FUZZ
@given(st.integers(1, 8), st.booleans(), st.integers(0, 255))
def test_lcus_bad_checksum_is_dropped(ch, on, bad):
    good = frame(ch, on)
    if bad == good[3]:
        bad = (bad + 1) & 0xFF
    parser = LcusParser()
    assert parser.feed(good[:3] + bytes([bad]), 0.0) == []
    assert parser.bad_checksums == 1
