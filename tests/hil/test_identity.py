"""Identity of the unit against its DUT profile: firmware release and component versions."""
from bench.limits import Limit
from bench.profile import version_tuple


def test_identity(identity, profile, record, needs):
    fw = identity.firmware
    if profile.firmware is None:
        record.unmeasured("firmware_at_least_minimum", f"the DUT profile {profile.model} names no firmware "
                          "release (a generic profile): the firmware is not judged", causes=("maintenance",))
        return
    record.measure("firmware_at_least_minimum", int(version_tuple(fw) >= version_tuple(profile.firmware.minimum)),
                   "bool", Limit(equals=1), cause="maintenance", strength="strong",
                   note=f"firmware {fw} is older than the supported minimum {profile.firmware.minimum}")
    record.measure("firmware_version", fw, "", Limit(equals=profile.firmware.expected))
    # a release between the minimum and the expected one is stale, not broken: no cause
    if not needs("components", *(f"component_{name}_allowed" for name in profile.components),
                 causes=("firmware_driver",), skip=False):
        return
    for name, allowed in profile.components.items():
        have = identity.components.get(name)
        record.measure(f"component_{name}_allowed", int(have in allowed), "bool", Limit(equals=1),
                       cause="firmware_driver", strength="strong",
                       note=f"component {name} is {have or 'missing'}; the profile allows {', '.join(allowed)}")
