"""Identity of the unit against its DUT profile: firmware release and component versions."""
from posbench.core.limits import HOLDS, Limit
from posbench.spec.measures import Measure, measures
from posbench.setup.profile import version_tuple

def _firmware(check):
    """A firmware limit, or None from a generic profile (no release named: the firmware is not judged)."""
    return lambda profile: check(profile.firmware) if profile.firmware else None


@measures(
    Measure("firmware_at_least_minimum", "bool", _firmware(lambda fw: HOLDS), bears_on=("maintenance",),
            evidence="strong", needs="identity"),
    Measure("firmware_version", "", _firmware(lambda fw: Limit(equals=fw.expected)), needs="identity"),
    Measure("component_{each}_allowed", "bool", lambda profile: HOLDS, bears_on=("firmware_driver",),
            evidence="strong", needs="components", each=lambda profile: profile.components),
    needs="identity", readers=True,
)
def test_identity(identity, profile, record):
    fw = identity.firmware
    if record.wanted("firmware_version"):
        record.measure("firmware_at_least_minimum", int(version_tuple(fw) >= version_tuple(profile.firmware.minimum)),
                       note=f"firmware {fw} is older than the supported minimum {profile.firmware.minimum}")
        record.measure("firmware_version", fw)
        # a release between the minimum and the expected one is stale, not broken: no cause
    for name, allowed in profile.components.items():
        if record.wanted(f"component_{name}_allowed"):
            have = identity.components.get(name)
            record.measure(f"component_{name}_allowed", int(have in allowed),
                           note=f"component {name} is {have or 'missing'}; the profile allows {', '.join(allowed)}")
