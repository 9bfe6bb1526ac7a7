"""kernelflow._lazy_imports: a module imported when an attribute of it is first read.

Each test runs in a new process, where the stand-in's module is not imported yet (in this
one, the suite has long imported asyncio). ``tests/test_public_api.py`` checks that a
first flow leaves asyncio unimported.
"""

import subprocess
import sys


def run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_module_is_imported_when_an_attribute_is_first_read():
    out = run_python(
        "import sys\n"
        "from kernelflow._lazy_imports import _ImportedOnFirstUse\n"
        "stand_in = _ImportedOnFirstUse('wave')\n"
        "print('wave' in sys.modules, stand_in.WAVE_FORMAT_PCM, 'wave' in sys.modules)"
    )
    assert out == "False 1 True"


def test_after_the_first_read_it_reads_the_modules_namespace_as_it_is_now():
    # nest_asyncio2 replaces functions of asyncio: a stand-in must not keep the old ones.
    out = run_python(
        "import wave\n"
        "from kernelflow._lazy_imports import _ImportedOnFirstUse\n"
        "stand_in = _ImportedOnFirstUse('wave')\n"
        "first = stand_in.WAVE_FORMAT_PCM\n"
        "wave.WAVE_FORMAT_PCM = 'replaced'\n"
        "print(first, stand_in.WAVE_FORMAT_PCM, stand_in.__dict__ is wave.__dict__)"
    )
    assert out == "1 replaced True"


def test_a_name_the_module_lacks_is_an_attribute_error_before_and_after_the_first_use():
    out = run_python(
        "from kernelflow._lazy_imports import _ImportedOnFirstUse\n"
        "stand_in = _ImportedOnFirstUse('wave')\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        stand_in.no_such_name\n"
        "    except AttributeError as error:\n"
        "        print('no_such_name' in str(error))"
    )
    assert out.splitlines() == ["True", "True"]


def test_reads_after_the_first_go_through_no_python_method():
    # A class with __getattr__ makes every lookup on its instances slower (some modules
    # read asyncio's or uuid's names on paths that run per task).
    out = run_python(
        "from kernelflow._lazy_imports import _ImportedOnFirstUse\n"
        "stand_in = _ImportedOnFirstUse('wave')\n"
        "stand_in.WAVE_FORMAT_PCM\n"
        "print(hasattr(type(stand_in), '__getattr__'))"
    )
    assert out == "False"


def test_a_module_imported_already_is_used_as_it_is():
    out = run_python(
        "import wave\n"
        "from kernelflow._lazy_imports import _on_first_use\n"
        "print(_on_first_use('wave') is wave)"
    )
    assert out == "True"


def test_asyncio_through_the_stand_in_is_asyncio():
    out = run_python(
        "import asyncio as real\n"
        "from kernelflow._lazy_imports import asyncio\n"
        "print(asyncio.CancelledError is real.CancelledError,"
        " asyncio.run(real.sleep(0, result='ran')))"
    )
    assert out == "True ran"
