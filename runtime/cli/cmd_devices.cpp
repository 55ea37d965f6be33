#include <cstdio>
#include <string>

#include "runtime/cli/args.h"
#include "runtime/cli/verbs.h"
#include "runtime/device/devices.h"

namespace kiln::cli {

int cmd_devices(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1, {{"--help", "-h", false}}, &args);
  if (!st) return fail("devices", st.message());
  if (args.has("--help")) {
    std::puts("usage: kiln devices\n\nLists the devices kiln can run on; use the name in the first column "
              "with --device.");
    return 0;
  }
  ResolvedDevice def;
  st = resolve_device("auto", &def);
  std::printf("cpu        host CPU backend (oneDNN fast path, reference kernels for the rest; every op)%s\n",
              def.backend == Backend::kCpu ? "  [auto]" : "");
  const auto& devs = opencl_devices();
  for (size_t i = 0; i < devs.size(); ++i) {
    const DeviceCaps& c = devs[i].caps;
    bool fp16 = false, fp64 = false;
    for (const auto& e : c.extensions) {
      fp16 |= e == "cl_khr_fp16";
      fp64 |= e == "cl_khr_fp64";
    }
    std::printf("opencl:%-3zu %s%s\n", i, c.name.c_str(),
                def.opencl_index == static_cast<int>(i) ? "  [auto]" : "");
    std::printf("           platform: %s (%s)\n", devs[i].platform_name.c_str(), devs[i].platform_version.c_str());
    std::printf("           type: %s, vendor: %s, driver: %s, %s\n",
                (devs[i].type & CL_DEVICE_TYPE_GPU) ? "gpu" : (devs[i].type & CL_DEVICE_TYPE_CPU) ? "cpu" : "other",
                c.vendor.c_str(), c.driver_version.c_str(), c.opencl_c_version.c_str());
    std::printf("           compute units: %u, global memory: %.0f MiB, max buffer: %.0f MiB, local memory: %.0f KiB\n",
                c.compute_units, c.global_mem_bytes / 1048576.0, c.max_alloc_bytes / 1048576.0,
                c.local_mem_bytes / 1024.0);
    std::printf("           fp16: %s, fp64: %s\n", fp16 ? "yes" : "no", fp64 ? "yes" : "no");
  }
  if (devs.empty()) std::puts("(no OpenCL devices found: install an OpenCL ICD such as pocl-opencl-icd)");
  return 0;
}

}  // namespace kiln::cli
