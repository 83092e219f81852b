"""Print the kernel levels torch and numpy run at, and fail unless they are the level asked for.

python .ci/kernels.py AVX2     # after ATEN_CPU_CAPABILITY=avx2 NPY_DISABLE_CPU_FEATURES="X86_V4 ..."
"""

import sys

import numpy
import torch
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

want = sys.argv[1]
torch_level = torch.backends.cpu.get_cpu_capability()
numpy_found = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
print(f"torch {torch.__version__} kernels: {torch_level}; numpy {numpy.__version__} SIMD targets: {numpy_found}")
if want == "AVX2" and (torch_level != "AVX2" or "X86_V4" in numpy_found):
    sys.exit("error: the AVX2 restriction did not take effect")
