"""The PTP/IP camera emulator lives in station.capture.ptpip_emulator (the live demo runs it);
tests import it as `ptpip_emulator`: this module *is* that one (private names included)."""
import sys

from station.capture import ptpip_emulator as _emulator

sys.modules[__name__] = _emulator
