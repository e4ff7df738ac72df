/*
 * A fake NVIDIA driver library (libnvidia-ml.so.1) for testing gpuops through the real pynvml
 * bindings. Compiled against NVIDIA's own nvml.h, so every struct and enum is the real ABI.
 *
 * It exports the NVML entry points the nvml source uses (and nothing pretending to exist), plus
 * fake_nvml_* control functions the test harness calls through ctypes. Each device is a table of
 * integer values; -1 (FAKE_UNSUPPORTED) makes the matching query answer NVML_ERROR_NOT_SUPPORTED,
 * the way a board without that sensor does. A per-device error code (e.g. NVML_ERROR_GPU_IS_LOST)
 * makes every per-device query answer that code, after the handle has been acquired.
 *
 * Scenario at load time: FAKE_NVML_SCENARIO = default | eight | driver-not-loaded | no-permission
 * | slow | vgpu | mig | eight-vgpu | eight-mig (eight GPUs of that kind, for benchmarks), and
 * FAKE_NVML_LATENCY_MS (milliseconds every call sleeps).
 *
 * Driver families are built as separate libraries; what a family lacks is not compiled in, so the
 * symbol is absent and pynvml raises FunctionNotFound, as on a real driver of that age:
 *   -DFAKE_NVML_NO_FIELD_VALUES   no nvmlDeviceGetFieldValues (every value by its single call)
 *   -DFAKE_NVML_LEGACY            no clocks-event API (only ...ClocksThrottleReasons), only the _v2
 *                                 process calls, field ids >= 185 unknown (INVALID_ARGUMENT), and no
 *                                 GPM (nvmlGpm*: R520 and newer)
 *
 * Thresholds: a board with thresholds_by_tlimit = 1 (the Blackwell full-field board) answers
 * NOT_SUPPORTED to nvmlDeviceGetTemperatureThreshold for shutdown / slowdown / memory max / GPU max,
 * which nvml.h says the NVML_FI_DEV_TEMPERATURE_*_TLIMIT fields supersede on Ada and later. Those
 * fields are in the T.Limit scale (degrees below T.Limit, the GPU max operating temperature:
 * an H100 shows slowdown -2 and shutdown -5), and nvmlDeviceGetMarginTemperature is the current
 * distance to T.Limit, so an absolute threshold is temperature + margin - field.
 *
 * GPM: Hopper and newer boards support it (nvmlGpmQueryDeviceSupport); each keeps cumulative busy
 * counters that grow at its configured activity (gpm_* keys, in hundredths of a percent), a
 * sample snapshots them, and nvmlGpmMetricsGet divides the difference of two samples by the time
 * between them, as the driver does with its hardware counters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nvml.h"

#define FAKE_MAX_DEVICES 64
#define FAKE_MAX_PROCS 16
#define FAKE_MAX_SETS 16
#define FAKE_MAX_QUEUED 256
#define FAKE_MAX_MIG 7 /* MIG devices an H100 can be split into */
#define FAKE_NO_INSTANCE 0xFFFFFFFFu /* gpuInstanceId of a process on a GPU without MIG */
#define FAKE_UNSUPPORTED (-1LL)
#define FAKE_SUPPORTED_EVENTS                                                                     \
    (nvmlEventTypeSingleBitEccError | nvmlEventTypeDoubleBitEccError | nvmlEventTypePState |      \
     nvmlEventTypeXidCriticalError | nvmlEventTypeClock)
#ifdef FAKE_NVML_LEGACY
#define FAKE_FIRST_UNKNOWN_FIELD 185 /* power fields, PCIe byte counters, GPU temp came later */
#define FAKE_PROCESS_CALL(call) nvmlDevice##call##RunningProcesses_v2
#else
#define FAKE_FIRST_UNKNOWN_FIELD NVML_FI_MAX
#define FAKE_PROCESS_CALL(call) nvmlDevice##call##RunningProcesses_v3
#endif

/* Every numeric property of a device, by name: the control API sets and reads them by these names. */
#define FAKE_KEYS(X)                                                                              \
    X(arch) X(pci_device_id) X(mem_total) X(mem_reserved) X(mem_used) X(power_limit_mw)           \
    X(power_mw) X(energy_mj) X(temp_c) X(mem_temp_c) X(shutdown_temp_c) X(slowdown_temp_c)        \
    X(mem_max_temp_c) X(gpu_max_temp_c) X(util_gpu) X(util_mem) X(sm_clock_mhz) X(mem_clock_mhz)  \
    X(fan_pct) X(pstate) X(pcie_link_gen) X(pcie_link_gen_max) X(pcie_link_width)                 \
    X(pcie_link_width_max) X(pcie_tx_bytes) X(pcie_rx_bytes) X(pcie_tx_bytes_s) X(pcie_rx_bytes_s) \
    X(ecc_corrected_volatile) X(ecc_uncorrected_volatile) X(ecc_corrected_aggregate)              \
    X(ecc_uncorrected_aggregate) X(remapped_rows_correctable) X(remapped_rows_uncorrectable)      \
    X(remapped_rows_pending) X(remapped_rows_failure) X(pcie_replay_count)                        \
    X(clocks_event_reasons) X(mig_mode) X(gpu_instance_id) X(compute_instance_id)                \
    X(gpm_graphics_util) X(gpm_sm_util) X(gpm_sm_occupancy) X(gpm_tensor_util) X(gpm_dram_util) \
    X(enc_util) X(dec_util) X(thresholds_by_tlimit)

#define FAKE_KEY_ENUM(name) K_##name,
enum fake_key { FAKE_KEYS(FAKE_KEY_ENUM) K_COUNT };
#define FAKE_KEY_NAME(name) #name,
static const char *const KEY_NAMES[K_COUNT] = {FAKE_KEYS(FAKE_KEY_NAME)};

#define FAKE_STRINGS(X) X(name) X(uuid) X(serial) X(vbios) X(profile) /* profile: MIG devices only */
#define FAKE_STRING_ENUM(name) S_##name,
enum fake_string { FAKE_STRINGS(FAKE_STRING_ENUM) S_COUNT };
static const char *const STRING_NAMES[S_COUNT] = {FAKE_STRINGS(FAKE_KEY_NAME)};

struct fake_process {
    unsigned int pid;
    unsigned long long used_bytes;
    unsigned int gpu_instance_id; /* FAKE_NO_INSTANCE unless the process runs on a MIG device */
};

struct nvmlDevice_st {
    long long value[K_COUNT];
    char text[S_COUNT][96];
    struct fake_process procs[2][FAKE_MAX_PROCS]; /* [0] compute, [1] graphics */
    unsigned int n_procs[2];
    nvmlReturn_t error;       /* answered by every per-device query when not NVML_SUCCESS */
    nvmlReturn_t identity_error; /* answered by UUID, name, serial and PCI info (a lost GPU's
                                    driver may still answer these from what it cached) */
    int fields_refused;       /* nvmlDeviceGetFieldValues fails as a whole (NOT_SUPPORTED) */
    long long counters_us;    /* when the energy and PCIe counters were last advanced */
    double gpm_busy[5];       /* GPM busy counters (hundredths of a percent x µs), by GPM_KEYS order */
    struct nvmlDevice_st *parent; /* a MIG device's GPU (MIG devices live in g_migs); NULL for a GPU */
    unsigned int n_mig;       /* MIG devices of a MIG-enabled GPU: g_migs[its index][0 .. n_mig) */
};

struct fake_event {
    nvmlDevice_t device;
    unsigned long long type;
    unsigned long long data;
};

struct nvmlEventSet_st {
    int in_use;
    unsigned long long mask[FAKE_MAX_DEVICES];
    struct fake_event queue[FAKE_MAX_QUEUED];
    unsigned int head, count;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_event_cond;
static struct nvmlDevice_st g_devices[FAKE_MAX_DEVICES];
static struct nvmlDevice_st g_migs[FAKE_MAX_DEVICES][FAKE_MAX_MIG];
static struct nvmlEventSet_st g_sets[FAKE_MAX_SETS];
static unsigned int g_device_count;
static unsigned int g_init_count;
static nvmlReturn_t g_init_error;
static unsigned int g_latency_ms;
static unsigned long long g_calls, g_waits;

/* ---------------------------------------------------------------- helpers */

static long long now_us(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void sleep_latency(void) {
    unsigned int ms = __atomic_load_n(&g_latency_ms, __ATOMIC_RELAXED);
    if (ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        }
    }
}

/* Every API call: count it, take the configured latency (outside the lock, so a slow call never
 * blocks the event thread), then lock the device table. */
static void api_enter(void) {
    __atomic_add_fetch(&g_calls, 1, __ATOMIC_RELAXED);
    sleep_latency();
    pthread_mutex_lock(&g_lock);
}

static nvmlReturn_t api_leave(nvmlReturn_t ret) {
    pthread_mutex_unlock(&g_lock);
    return ret;
}

static int valid_device(nvmlDevice_t device) {
    return device >= g_devices && device < g_devices + g_device_count;
}

static int valid_mig(nvmlDevice_t device) {
    const struct nvmlDevice_st *first = &g_migs[0][0];
    return device >= first && device < first + (size_t)g_device_count * FAKE_MAX_MIG && device->parent != NULL;
}

/* For the queries a MIG device handle answers (UUID, name, memory, instance ids): its GPU's error. */
static nvmlReturn_t check_device_or_mig(nvmlDevice_t device) {
    if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
    if (valid_mig(device)) return device->parent->error;
    if (!valid_device(device)) return NVML_ERROR_INVALID_ARGUMENT;
    return device->error;
}

static nvmlReturn_t check_device(nvmlDevice_t device) {
    if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
    if (!valid_device(device)) return NVML_ERROR_INVALID_ARGUMENT;
    return device->error;
}

#define FAKE_GPM_METRICS 5
/* The keys holding each GPM metric's activity (GPM_METRIC_IDS names the metrics in this order). */
static const enum fake_key GPM_KEYS[FAKE_GPM_METRICS] = {
    K_gpm_graphics_util, K_gpm_sm_util, K_gpm_sm_occupancy, K_gpm_tensor_util, K_gpm_dram_util};

/* Energy, PCIe byte and GPM busy counters grow with time at the current power draw, PCIe rates
 * and GPM activity. */
static long long advance_counters(nvmlDevice_t d) {
    long long now = now_us(CLOCK_REALTIME);
    long long elapsed = now - d->counters_us;
    for (int m = 0; m < FAKE_GPM_METRICS; m++)
        if (d->value[GPM_KEYS[m]] != FAKE_UNSUPPORTED) d->gpm_busy[m] += (double)d->value[GPM_KEYS[m]] * (double)elapsed;
    if (d->value[K_power_mw] != FAKE_UNSUPPORTED && d->value[K_energy_mj] != FAKE_UNSUPPORTED)
        d->value[K_energy_mj] += d->value[K_power_mw] * elapsed / 1000000LL;
    if (d->value[K_pcie_tx_bytes] != FAKE_UNSUPPORTED)
        d->value[K_pcie_tx_bytes] += d->value[K_pcie_tx_bytes_s] * elapsed / 1000000LL;
    if (d->value[K_pcie_rx_bytes] != FAKE_UNSUPPORTED)
        d->value[K_pcie_rx_bytes] += d->value[K_pcie_rx_bytes_s] * elapsed / 1000000LL;
    d->counters_us = now;
    return now;
}

/* The identity queries answer from the driver's cache: only identity_error stops them. */
static nvmlReturn_t check_identity(nvmlDevice_t device) {
    if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
    if (valid_mig(device)) return device->parent->identity_error;
    if (!valid_device(device)) return NVML_ERROR_INVALID_ARGUMENT;
    return device->identity_error;
}

static nvmlReturn_t read_uint(nvmlDevice_t device, enum fake_key key, unsigned int *out) {
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return ret;
    if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (device->value[key] == FAKE_UNSUPPORTED) return NVML_ERROR_NOT_SUPPORTED;
    *out = (unsigned int)device->value[key];
    return NVML_SUCCESS;
}

static nvmlReturn_t read_text(nvmlDevice_t device, enum fake_string key, char *out, unsigned int length) {
    nvmlReturn_t ret = key == S_vbios ? check_device(device) : check_identity(device);
    if (ret != NVML_SUCCESS) return ret;
    if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (device->text[key][0] == '\0') return NVML_ERROR_NOT_SUPPORTED;
    if (strlen(device->text[key]) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(out, device->text[key]);
    return NVML_SUCCESS;
}

static nvmlReturn_t copy_system_text(const char *text, char *out, unsigned int length) {
    if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
    if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(text) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(out, text);
    return NVML_SUCCESS;
}

/* ---------------------------------------------------------------- scenarios */

static void set_text(nvmlDevice_t d, enum fake_string key, const char *text) {
    snprintf(d->text[key], sizeof d->text[key], "%s", text);
}

static void add_instance_process(nvmlDevice_t d, int graphics, unsigned int pid, unsigned long long used,
                                 unsigned int gpu_instance_id) {
    if (d->n_procs[graphics] < FAKE_MAX_PROCS) {
        struct fake_process *p = &d->procs[graphics][d->n_procs[graphics]++];
        p->pid = pid;
        p->used_bytes = used;
        p->gpu_instance_id = gpu_instance_id;
    }
}

static void add_process(nvmlDevice_t d, int graphics, unsigned int pid, unsigned long long used) {
    add_instance_process(d, graphics, pid, used, FAKE_NO_INSTANCE);
}

/* PCI bus number of device `index` (domain 0, device 0). */
static unsigned int bus_of(unsigned int index) {
    return 0x18 + 0x10 * index;
}

static const unsigned long long GiB = 1024ULL * 1024ULL * 1024ULL;

/* NVIDIA H100 80GB HBM3 (SXM5): no fan of its own, so fan speed is NOT_SUPPORTED. */
static void make_h100_sxm(nvmlDevice_t d, unsigned int index) {
    long long *v = d->value;
    v[K_arch] = NVML_DEVICE_ARCH_HOPPER;
    v[K_pci_device_id] = 0x233010DE;
    v[K_mem_total] = 85520809984LL; /* 81559 MiB */
    v[K_mem_reserved] = 567LL * 1024 * 1024;
    v[K_mem_used] = 42LL * GiB;
    v[K_power_limit_mw] = 700000;
    v[K_power_mw] = 412345;
    v[K_energy_mj] = 9876543210LL;
    v[K_temp_c] = 41;
    v[K_mem_temp_c] = 48;
    v[K_shutdown_temp_c] = 92;
    v[K_slowdown_temp_c] = 89;
    v[K_mem_max_temp_c] = 95;
    v[K_gpu_max_temp_c] = 87;
    v[K_util_gpu] = 87;
    v[K_util_mem] = 54;
    v[K_sm_clock_mhz] = 1980;
    v[K_mem_clock_mhz] = 2619;
    v[K_fan_pct] = FAKE_UNSUPPORTED;
    v[K_pstate] = NVML_PSTATE_0;
    v[K_pcie_link_gen] = 5;
    v[K_pcie_link_gen_max] = 5;
    v[K_pcie_link_width] = 16;
    v[K_pcie_link_width_max] = 16;
    v[K_pcie_tx_bytes] = 1000000000LL;
    v[K_pcie_rx_bytes] = 2000000000LL;
    v[K_pcie_tx_bytes_s] = 1464843LL * 1024; /* ~1.5 GB/s */
    v[K_pcie_rx_bytes_s] = 3125000LL * 1024; /* 3.2 GB/s */
    v[K_mig_mode] = 0;
    v[K_gpm_graphics_util] = 9150; /* 91.50 %: kernels run nearly all the time ... */
    v[K_gpm_sm_util] = 6320;       /* ... but keep only 63 % of the SMs busy */
    v[K_gpm_sm_occupancy] = 3875;
    v[K_gpm_tensor_util] = 4100;
    v[K_gpm_dram_util] = 2730;
    v[K_enc_util] = FAKE_UNSUPPORTED; /* H100: NVDEC engines, no NVENC */
    v[K_dec_util] = 12;
    char text[96];
    set_text(d, S_name, "NVIDIA H100 80GB HBM3");
    snprintf(text, sizeof text, "GPU-5d6f1c2a-0000-4e6b-9a1d-%012x", 0xa100u + index);
    set_text(d, S_uuid, text);
    snprintf(text, sizeof text, "165202300%04u", 1000 + index);
    set_text(d, S_serial, text);
    set_text(d, S_vbios, "96.00.99.00.01");
}

/* NVIDIA RTX 6000 Ada Generation: a PCIe workstation card with a blower fan and GDDR6 (no memory
 * temperature sensor, no row remapper, no MIG). */
static void make_rtx6000_ada(nvmlDevice_t d, unsigned int index) {
    long long *v = d->value;
    v[K_arch] = NVML_DEVICE_ARCH_ADA;
    v[K_pci_device_id] = 0x26B110DE;
    v[K_mem_total] = 51527024640LL; /* 49140 MiB */
    v[K_mem_reserved] = 480LL * 1024 * 1024;
    v[K_mem_used] = 1LL * GiB;
    v[K_power_limit_mw] = 300000;
    v[K_power_mw] = 31000;
    v[K_energy_mj] = 123456789LL;
    v[K_temp_c] = 35;
    v[K_mem_temp_c] = FAKE_UNSUPPORTED;
    v[K_shutdown_temp_c] = 98;
    v[K_slowdown_temp_c] = 95;
    v[K_mem_max_temp_c] = FAKE_UNSUPPORTED;
    v[K_gpu_max_temp_c] = 93;
    v[K_util_gpu] = 0;
    v[K_util_mem] = 0;
    v[K_sm_clock_mhz] = 210;
    v[K_mem_clock_mhz] = 405;
    v[K_fan_pct] = 41;
    v[K_pstate] = NVML_PSTATE_8;
    v[K_pcie_link_gen] = 1; /* idle boards drop their link to gen 1 to save power */
    v[K_pcie_link_gen_max] = 4;
    v[K_pcie_link_width] = 16;
    v[K_pcie_link_width_max] = 16;
    v[K_pcie_tx_bytes] = 0;
    v[K_pcie_rx_bytes] = 0;
    v[K_pcie_tx_bytes_s] = 1000 * 1024;
    v[K_pcie_rx_bytes_s] = 2000 * 1024;
    v[K_remapped_rows_correctable] = FAKE_UNSUPPORTED;
    v[K_remapped_rows_uncorrectable] = FAKE_UNSUPPORTED;
    v[K_remapped_rows_pending] = FAKE_UNSUPPORTED;
    v[K_remapped_rows_failure] = FAKE_UNSUPPORTED;
    v[K_clocks_event_reasons] = nvmlClocksEventReasonGpuIdle;
    v[K_mig_mode] = FAKE_UNSUPPORTED;
    for (int m = 0; m < FAKE_GPM_METRICS; m++) v[GPM_KEYS[m]] = FAKE_UNSUPPORTED; /* GPM is Hopper+ */
    v[K_enc_util] = 23; /* a workstation card encoding video */
    v[K_dec_util] = 5;
    char text[96];
    set_text(d, S_name, "NVIDIA RTX 6000 Ada Generation");
    snprintf(text, sizeof text, "GPU-8b1e7f40-3c2d-11ee-be56-%012x", 0xada0u + index);
    set_text(d, S_uuid, text);
    snprintf(text, sizeof text, "132302200%04u", 2000 + index);
    set_text(d, S_serial, text);
    set_text(d, S_vbios, "95.02.3C.00.04");
}

/* A PCIe workstation board on which every field the nvml source reads answers: the worst case
 * for the number of calls and values per poll. */
static void make_full_field_board(nvmlDevice_t d, unsigned int index) {
    make_h100_sxm(d, index);
    long long *v = d->value;
    v[K_arch] = NVML_DEVICE_ARCH_BLACKWELL;
    v[K_pci_device_id] = 0x2BB110DE;
    v[K_mem_total] = 102641958912LL; /* 97887 MiB */
    v[K_power_limit_mw] = 600000;
    v[K_fan_pct] = 35;
    v[K_enc_util] = 17;
    v[K_thresholds_by_tlimit] = 1;
    v[K_clocks_event_reasons] = nvmlClocksEventReasonSwPowerCap;
    char text[96];
    set_text(d, S_name, "NVIDIA RTX PRO 6000 Blackwell Workstation Edition");
    snprintf(text, sizeof text, "GPU-0b1ac6e2-7f55-4d10-8c3e-%012x", 0xb600u + index);
    set_text(d, S_uuid, text);
    add_process(d, 0, (unsigned int)getpid(), 3 * GiB);
    add_process(d, 0, 4000000, 20 * GiB);
    add_process(d, 1, (unsigned int)getpid(), 3 * GiB);
}

static void reset_device(nvmlDevice_t d) {
    memset(d, 0, sizeof *d);
    memset(g_migs[d - g_devices], 0, sizeof g_migs[0]);
    d->counters_us = now_us(CLOCK_REALTIME);
}

/* A MIG device of GPU `d` named as the driver names it ("<GPU name> MIG <profile>"), with its GPU
 * and compute instance ids, framebuffer share and use. */
static void add_mig(nvmlDevice_t d, const char *profile, unsigned int gi, unsigned int ci,
                    long long mem_total, long long mem_used, const long long gpm[FAKE_GPM_METRICS]) {
    nvmlDevice_t m = &g_migs[d - g_devices][d->n_mig];
    m->parent = d;
    m->value[K_gpu_instance_id] = gi;
    m->value[K_compute_instance_id] = ci;
    m->value[K_mem_total] = mem_total;
    m->value[K_mem_used] = mem_used;
    snprintf(m->text[S_name], sizeof m->text[S_name], "%.80s MIG %.10s", d->text[S_name], profile);
    snprintf(m->text[S_uuid], sizeof m->text[S_uuid], "MIG-7a3c%04x-55b1-5e0a-8f7d-%012x",
             (unsigned int)(d - g_devices), 0xc0deu + d->n_mig);
    set_text(m, S_profile, profile);
    for (int k = 0; k < FAKE_GPM_METRICS; k++) m->value[GPM_KEYS[k]] = gpm[k];
    m->counters_us = now_us(CLOCK_REALTIME);
    d->n_mig++;
    d->value[K_mem_used] += mem_used;
}

static void default_fleet(void) {
    g_device_count = 4;
    for (unsigned int i = 0; i < g_device_count; i++) reset_device(&g_devices[i]);
    /* 0: busy SXM H100 running this process and one in another PID namespace (a container). */
    make_h100_sxm(&g_devices[0], 0);
    add_process(&g_devices[0], 0, (unsigned int)getpid(), 2 * GiB);
    add_process(&g_devices[0], 0, 4000000, 30 * GiB);
    add_process(&g_devices[0], 1, (unsigned int)getpid(), 2 * GiB); /* compute + graphics */
    /* 1: an H100 with ECC errors and rows waiting to be remapped (needs a GPU reset). */
    make_h100_sxm(&g_devices[1], 1);
    long long *v = g_devices[1].value;
    v[K_ecc_corrected_volatile] = 7;
    v[K_ecc_uncorrected_volatile] = 1;
    v[K_ecc_corrected_aggregate] = 1234;
    v[K_ecc_uncorrected_aggregate] = 3;
    v[K_remapped_rows_correctable] = 2;
    v[K_remapped_rows_uncorrectable] = 1;
    v[K_remapped_rows_pending] = 1;
    v[K_remapped_rows_failure] = 0;
    v[K_pcie_replay_count] = 12;
    v[K_clocks_event_reasons] = nvmlClocksEventReasonSwPowerCap | nvmlClocksEventReasonSwThermalSlowdown;
    /* 2: an H100 that has fallen off the bus; the driver still answers its identity from cache. */
    make_h100_sxm(&g_devices[2], 2);
    g_devices[2].error = NVML_ERROR_GPU_IS_LOST;
    /* 3: a PCIe card whose fan works. */
    make_rtx6000_ada(&g_devices[3], 3);
}

static void eight_full_boards(void) {
    g_device_count = 8;
    for (unsigned int i = 0; i < g_device_count; i++) {
        reset_device(&g_devices[i]);
        make_full_field_board(&g_devices[i], i);
    }
}

/* A vGPU guest (an H100 shared by time-slicing, profile 40C): the hypervisor owns the board, so
 * sensors, power, energy, PCIe, row remaps, thresholds and the serial are NOT_SUPPORTED. GPU 0's
 * driver refuses nvmlDeviceGetFieldValues as a whole, GPU 1's answers NOT_SUPPORTED per field
 * (and so on alternately, for `count` guests). */
static void vgpu_guests(unsigned int count) {
    static const enum fake_key refused[] = {
        K_power_limit_mw, K_power_mw, K_energy_mj, K_temp_c, K_mem_temp_c, K_shutdown_temp_c,
        K_slowdown_temp_c, K_mem_max_temp_c, K_gpu_max_temp_c, K_fan_pct, K_pcie_link_gen,
        K_pcie_link_gen_max, K_pcie_link_width, K_pcie_link_width_max, K_pcie_tx_bytes, K_pcie_rx_bytes,
        K_remapped_rows_correctable, K_remapped_rows_uncorrectable, K_remapped_rows_pending,
        K_remapped_rows_failure, K_pcie_replay_count, K_mig_mode, K_gpm_graphics_util, K_gpm_sm_util,
        K_gpm_sm_occupancy, K_gpm_tensor_util, K_gpm_dram_util};
    g_device_count = count;
    for (unsigned int i = 0; i < g_device_count; i++) {
        nvmlDevice_t d = &g_devices[i];
        reset_device(d);
        make_h100_sxm(d, i);
        for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) d->value[refused[k]] = FAKE_UNSUPPORTED;
        d->value[K_mem_total] = 40LL * GiB;
        d->value[K_mem_used] = 12LL * GiB;
        set_text(d, S_name, "NVIDIA H100XM-40C");
        set_text(d, S_serial, "");
        d->fields_refused = i % 2 == 0;
    }
}

/* MIG-enabled H100s (GPUs 0 and 1): the parent refuses utilization, its memory use is that of
 * its MIG devices, and its processes carry the GPU instance they run in. GPU 0 is split
 * 3g.40gb + 2g.20gb + 1g.10gb (one MIG slot left empty in between), GPU 1 is one 7g.80gb;
 * GPU 2 is an H100 without MIG. GPU instance ids are those an H100 hands out for these profiles. */
static void enable_mig(nvmlDevice_t d) {
    d->value[K_mig_mode] = NVML_DEVICE_MIG_ENABLE;
    d->value[K_util_gpu] = FAKE_UNSUPPORTED; /* the parent refuses utilization, video engines too */
    d->value[K_dec_util] = FAKE_UNSUPPORTED;
    d->value[K_mem_used] = 0;
}

/* GPM activity of a GPU instance (GPM_KEYS order: graphics, SM, occupancy, tensor, DRAM; hundredths of %). */
static const long long TRAINING[FAKE_GPM_METRICS] = {9800, 7100, 4400, 5200, 3300};
static const long long INFERENCE[FAKE_GPM_METRICS] = {4000, 1250, 900, 600, 1500};
static const long long IDLE[FAKE_GPM_METRICS] = {0, 0, 0, 0, 0};

static void split_mig(nvmlDevice_t d) {
    enable_mig(d);
    add_mig(d, "3g.40gb", 1, 0, 40192LL * 1024 * 1024, 21LL * GiB, TRAINING);
    add_mig(d, "2g.20gb", 5, 0, 20096LL * 1024 * 1024, 3LL * GiB, INFERENCE);
    add_mig(d, "1g.10gb", 13, 0, 9984LL * 1024 * 1024, 0, IDLE);
    add_instance_process(d, 0, (unsigned int)getpid(), 20 * GiB, 1);
    add_instance_process(d, 0, 4000002, 3 * GiB, 5);
}

static void mig_fleet(void) {
    g_device_count = 3;
    for (unsigned int i = 0; i < g_device_count; i++) {
        reset_device(&g_devices[i]);
        make_h100_sxm(&g_devices[i], i);
    }
    nvmlDevice_t whole = &g_devices[1];
    split_mig(&g_devices[0]);
    enable_mig(whole);
    add_mig(whole, "7g.80gb", 0, 0, 81152LL * 1024 * 1024, 30 * GiB, TRAINING);
    add_instance_process(whole, 0, 4000003, 30 * GiB, 0);
}

/* Eight H100s, each split 3g.40gb + 2g.20gb + 1g.10gb: the MIG worst case per poll (benchmarks). */
static void eight_split_gpus(void) {
    g_device_count = 8;
    for (unsigned int i = 0; i < g_device_count; i++) {
        reset_device(&g_devices[i]);
        make_h100_sxm(&g_devices[i], i);
        split_mig(&g_devices[i]);
    }
}

static void configure(const char *scenario, unsigned int latency_ms) {
    memset(g_sets, 0, sizeof g_sets);
    g_init_count = 0;
    g_init_error = NVML_SUCCESS;
    g_latency_ms = latency_ms;
    if (strcmp(scenario, "eight") == 0) {
        eight_full_boards();
        return;
    }
    if (strcmp(scenario, "vgpu") == 0 || strcmp(scenario, "eight-vgpu") == 0) {
        vgpu_guests(scenario[0] == 'e' ? 8 : 2);
        return;
    }
    if (strcmp(scenario, "eight-mig") == 0) {
        eight_split_gpus();
        return;
    }
    if (strcmp(scenario, "mig") == 0) {
        mig_fleet();
        return;
    }
    default_fleet();
    if (strcmp(scenario, "driver-not-loaded") == 0) g_init_error = NVML_ERROR_DRIVER_NOT_LOADED;
    if (strcmp(scenario, "no-permission") == 0) g_init_error = NVML_ERROR_NO_PERMISSION;
    if (strcmp(scenario, "slow") == 0 && latency_ms == 0) g_latency_ms = 50;
}

static int known_scenario(const char *scenario) {
    static const char *const names[] = {"default", "eight", "driver-not-loaded", "no-permission", "slow", "vgpu", "mig",
                                        "eight-vgpu", "eight-mig"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(scenario, names[i]) == 0) return 1;
    return 0;
}

__attribute__((constructor)) static void fake_nvml_load(void) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g_event_cond, &attr);
    pthread_condattr_destroy(&attr);

    const char *scenario = getenv("FAKE_NVML_SCENARIO");
    const char *latency = getenv("FAKE_NVML_LATENCY_MS");
    if (scenario == NULL || scenario[0] == '\0') scenario = "default";
    configure(scenario, latency ? (unsigned int)strtoul(latency, NULL, 10) : 0);
    if (!known_scenario(scenario)) {
        fprintf(stderr, "fake NVML: unknown FAKE_NVML_SCENARIO '%s' (expected default, eight, "
                        "driver-not-loaded, no-permission, slow, vgpu, mig, eight-vgpu or eight-mig)\n", scenario);
        g_init_error = NVML_ERROR_UNKNOWN;
    }
}

/* ---------------------------------------------------------------- control API (test harness) */

int fake_nvml_reset(const char *scenario) {
    if (!known_scenario(scenario)) return -1;
    pthread_mutex_lock(&g_lock);
    configure(scenario, 0);
    g_calls = 0;
    g_waits = 0;
    pthread_cond_broadcast(&g_event_cond);
    pthread_mutex_unlock(&g_lock);
    return 0;
}

void fake_nvml_set_init_error(int code) {
    pthread_mutex_lock(&g_lock);
    g_init_error = (nvmlReturn_t)code;
    pthread_mutex_unlock(&g_lock);
}

/* `code` for every per-device query, `identity_code` for UUID, name, serial and PCI info. */
int fake_nvml_set_device_error(unsigned int index, int code, int identity_code) {
    if (index >= g_device_count) return -1;
    pthread_mutex_lock(&g_lock);
    g_devices[index].error = (nvmlReturn_t)code;
    g_devices[index].identity_error = (nvmlReturn_t)identity_code;
    pthread_cond_broadcast(&g_event_cond);
    pthread_mutex_unlock(&g_lock);
    return 0;
}

void fake_nvml_set_latency_ms(unsigned int ms) {
    __atomic_store_n(&g_latency_ms, ms, __ATOMIC_RELAXED);
}

/* Keep the first `count` devices; new ones beyond the scenario are full-field boards. */
int fake_nvml_set_device_count(unsigned int count) {
    if (count > FAKE_MAX_DEVICES) return -1;
    pthread_mutex_lock(&g_lock);
    for (unsigned int i = g_device_count; i < count; i++) {
        reset_device(&g_devices[i]);
        make_full_field_board(&g_devices[i], i);
    }
    g_device_count = count;
    pthread_mutex_unlock(&g_lock);
    return 0;
}

static int key_index(const char *key) {
    for (int k = 0; k < K_COUNT; k++)
        if (strcmp(key, KEY_NAMES[k]) == 0) return k;
    return -1;
}

/* Set a numeric property; -1 makes it NOT_SUPPORTED. Returns -1 for an unknown device or key. */
int fake_nvml_set_value(unsigned int index, const char *key, long long value) {
    int k = key_index(key);
    if (index >= g_device_count || k < 0) return -1;
    pthread_mutex_lock(&g_lock);
    advance_counters(&g_devices[index]);
    g_devices[index].value[k] = value;
    pthread_mutex_unlock(&g_lock);
    return 0;
}

/* Read a numeric property as the driver holds it now (counters advanced to this instant). */
int fake_nvml_get_value(unsigned int index, const char *key, long long *value) {
    int k = key_index(key);
    if (index >= g_device_count || k < 0 || value == NULL) return -1;
    pthread_mutex_lock(&g_lock);
    advance_counters(&g_devices[index]);
    *value = g_devices[index].value[k];
    pthread_mutex_unlock(&g_lock);
    return 0;
}

int fake_nvml_get_string(unsigned int index, const char *key, char *out, unsigned int length) {
    if (index < g_device_count && strcmp(key, "pci_bus_id") == 0 && out && length) {
        snprintf(out, length, NVML_DEVICE_PCI_BUS_ID_FMT, 0u, bus_of(index), 0u);
        return 0;
    }
    for (int s = 0; s < S_COUNT; s++) {
        if (index < g_device_count && strcmp(key, STRING_NAMES[s]) == 0 && out && length) {
            pthread_mutex_lock(&g_lock);
            snprintf(out, length, "%s", g_devices[index].text[s]);
            pthread_mutex_unlock(&g_lock);
            return 0;
        }
    }
    return -1;
}

/* graphics = 0 for the compute list, 1 for the graphics list; used_bytes may be
 * NVML_VALUE_NOT_AVAILABLE (all bits set). */
int fake_nvml_add_process(unsigned int index, int graphics, unsigned int pid,
                                      unsigned long long used_bytes) {
    if (index >= g_device_count || graphics < 0 || graphics > 1) return -1;
    pthread_mutex_lock(&g_lock);
    int full = g_devices[index].n_procs[graphics] >= FAKE_MAX_PROCS;
    add_process(&g_devices[index], graphics, pid, used_bytes);
    pthread_mutex_unlock(&g_lock);
    return full ? -1 : 0;
}

int fake_nvml_clear_processes(unsigned int index) {
    if (index >= g_device_count) return -1;
    pthread_mutex_lock(&g_lock);
    g_devices[index].n_procs[0] = g_devices[index].n_procs[1] = 0;
    pthread_mutex_unlock(&g_lock);
    return 0;
}

/* The per-device error code every query of GPU `index` answers (0 = healthy), or -1. */
int fake_nvml_get_device_error(unsigned int index) {
    if (index >= g_device_count) return -1;
    pthread_mutex_lock(&g_lock);
    int code = (int)g_devices[index].error;
    pthread_mutex_unlock(&g_lock);
    return code;
}

/* Process `slot` of GPU `index`'s compute (graphics = 0) or graphics list; -1 past the end. */
int fake_nvml_get_process(unsigned int index, int graphics, unsigned int slot, unsigned int *pid,
                          unsigned long long *used_bytes, unsigned int *gpu_instance_id) {
    if (index >= g_device_count || graphics < 0 || graphics > 1 || !pid || !used_bytes || !gpu_instance_id) return -1;
    pthread_mutex_lock(&g_lock);
    int found = slot < g_devices[index].n_procs[graphics];
    if (found) {
        *pid = g_devices[index].procs[graphics][slot].pid;
        *used_bytes = g_devices[index].procs[graphics][slot].used_bytes;
        *gpu_instance_id = g_devices[index].procs[graphics][slot].gpu_instance_id;
    }
    pthread_mutex_unlock(&g_lock);
    return found ? 0 : -1;
}

/* How many MIG devices GPU `index` holds, or -1. */
int fake_nvml_mig_count(unsigned int index) {
    if (index >= g_device_count) return -1;
    pthread_mutex_lock(&g_lock);
    int count = (int)g_devices[index].n_mig;
    pthread_mutex_unlock(&g_lock);
    return count;
}

/* A numeric property (mem_total, mem_used, gpu_instance_id, ...) of MIG device `slot` of GPU `index`. */
int fake_nvml_get_mig_value(unsigned int index, unsigned int slot, const char *key, long long *value) {
    int k = key_index(key);
    if (index >= g_device_count || slot >= g_devices[index].n_mig || k < 0 || value == NULL) return -1;
    pthread_mutex_lock(&g_lock);
    *value = g_migs[index][slot].value[k];
    pthread_mutex_unlock(&g_lock);
    return 0;
}

int fake_nvml_get_mig_string(unsigned int index, unsigned int slot, const char *key, char *out, unsigned int length) {
    if (index >= g_device_count || slot >= g_devices[index].n_mig || !out || !length) return -1;
    for (int s = 0; s < S_COUNT; s++) {
        if (strcmp(key, STRING_NAMES[s]) == 0) {
            pthread_mutex_lock(&g_lock);
            snprintf(out, length, "%s", g_migs[index][slot].text[s]);
            pthread_mutex_unlock(&g_lock);
            return 0;
        }
    }
    return -1;
}

/* Deliver an XID to every event set that registered this device for XID events; returns how many. */
int fake_nvml_inject_xid(unsigned int index, unsigned long long xid) {
    if (index >= g_device_count) return -1;
    int delivered = 0;
    pthread_mutex_lock(&g_lock);
    for (int s = 0; s < FAKE_MAX_SETS; s++) {
        struct nvmlEventSet_st *set = &g_sets[s];
        if (!set->in_use || !(set->mask[index] & nvmlEventTypeXidCriticalError) || set->count == FAKE_MAX_QUEUED)
            continue;
        struct fake_event *e = &set->queue[(set->head + set->count) % FAKE_MAX_QUEUED];
        e->device = &g_devices[index];
        e->type = nvmlEventTypeXidCriticalError;
        e->data = xid;
        set->count++;
        delivered++;
    }
    pthread_cond_broadcast(&g_event_cond);
    pthread_mutex_unlock(&g_lock);
    return delivered;
}

/* NVML calls made since the last reset, not counting nvmlEventSetWait_v2 (see fake_nvml_wait_count). */
unsigned long long fake_nvml_call_count(void) {
    return __atomic_load_n(&g_calls, __ATOMIC_RELAXED);
}

unsigned long long fake_nvml_wait_count(void) {
    return __atomic_load_n(&g_waits, __ATOMIC_RELAXED);
}

/* The first field id this driver build answers INVALID_ARGUMENT for (older drivers know fewer). */
unsigned int fake_nvml_first_unknown_field(void) {
    return FAKE_FIRST_UNKNOWN_FIELD;
}

unsigned int fake_nvml_init_count(void) {
    pthread_mutex_lock(&g_lock);
    unsigned int count = g_init_count;
    pthread_mutex_unlock(&g_lock);
    return count;
}

/* ---------------------------------------------------------------- NVML: init and system */

nvmlReturn_t DECLDIR nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    api_enter();
    if (g_init_error != NVML_SUCCESS) return api_leave(g_init_error);
    g_init_count++;
    return api_leave(NVML_SUCCESS);
}

nvmlReturn_t DECLDIR nvmlInit_v2(void) {
    return nvmlInitWithFlags(0);
}

nvmlReturn_t DECLDIR nvmlShutdown(void) {
    api_enter();
    if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
    g_init_count--;
    return api_leave(NVML_SUCCESS);
}

const DECLDIR char *nvmlErrorString(nvmlReturn_t result) {
    __atomic_add_fetch(&g_calls, 1, __ATOMIC_RELAXED);
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}

nvmlReturn_t DECLDIR nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    api_enter();
    return api_leave(copy_system_text("580.95.05", version, length));
}

nvmlReturn_t DECLDIR nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    api_enter();
    return api_leave(copy_system_text("13.580.95.05", version, length));
}

nvmlReturn_t DECLDIR nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion) {
    api_enter();
    if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
    if (cudaDriverVersion == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    *cudaDriverVersion = 13000;
    return api_leave(NVML_SUCCESS);
}

/* ---------------------------------------------------------------- NVML: devices */

nvmlReturn_t DECLDIR nvmlDeviceGetCount_v2(unsigned int *deviceCount) {
    api_enter();
    if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
    if (deviceCount == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    *deviceCount = g_device_count;
    return api_leave(NVML_SUCCESS);
}

nvmlReturn_t DECLDIR nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    api_enter();
    if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
    if (index >= g_device_count || device == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    *device = &g_devices[index];
    return api_leave(NVML_SUCCESS);
}

nvmlReturn_t DECLDIR nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    api_enter();
    return api_leave(read_text(device, S_name, name, length));
}

nvmlReturn_t DECLDIR nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    api_enter();
    return api_leave(read_text(device, S_uuid, uuid, length));
}

nvmlReturn_t DECLDIR nvmlDeviceGetSerial(nvmlDevice_t device, char *serial, unsigned int length) {
    api_enter();
    return api_leave(read_text(device, S_serial, serial, length));
}

nvmlReturn_t DECLDIR nvmlDeviceGetVbiosVersion(nvmlDevice_t device, char *version, unsigned int length) {
    api_enter();
    return api_leave(read_text(device, S_vbios, version, length));
}

nvmlReturn_t DECLDIR nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci) {
    api_enter();
    nvmlReturn_t ret = check_identity(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (pci == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    unsigned int index = (unsigned int)(device - g_devices);
    memset(pci, 0, sizeof *pci);
    pci->domain = 0;
    pci->bus = bus_of(index);
    pci->device = 0;
    pci->pciDeviceId = (unsigned int)device->value[K_pci_device_id];
    pci->pciSubSystemId = 0x16C110DE;
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, NVML_DEVICE_PCI_BUS_ID_LEGACY_FMT, pci->domain,
             pci->bus, pci->device);
    snprintf(pci->busId, sizeof pci->busId, NVML_DEVICE_PCI_BUS_ID_FMT, pci->domain, pci->bus, pci->device);
    return api_leave(NVML_SUCCESS);
}

nvmlReturn_t DECLDIR nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    api_enter();
    nvmlReturn_t ret = check_device_or_mig(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (memory == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    if (memory->version != nvmlMemory_v2) return api_leave(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    const long long *v = device->value;
    memory->total = (unsigned long long)v[K_mem_total];
    memory->reserved = (unsigned long long)v[K_mem_reserved];
    memory->used = (unsigned long long)v[K_mem_used];
    memory->free = memory->total - memory->reserved - memory->used;
    return api_leave(NVML_SUCCESS);
}

nvmlReturn_t DECLDIR nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit) {
    api_enter();
    return api_leave(read_uint(device, K_power_limit_mw, limit));
}

nvmlReturn_t DECLDIR nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    api_enter();
    return api_leave(read_uint(device, K_power_mw, power));
}

nvmlReturn_t DECLDIR nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode) {
    api_enter();
    nvmlReturn_t ret = read_uint(device, K_mig_mode, currentMode);
    if (ret == NVML_SUCCESS && pendingMode == NULL) ret = NVML_ERROR_INVALID_ARGUMENT;
    if (ret == NVML_SUCCESS) *pendingMode = *currentMode;
    return api_leave(ret);
}

/* Zero when MIG is not enabled (header: "Returns zero if MIG is not supported or enabled"). */
nvmlReturn_t DECLDIR nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (count == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    *count = device->value[K_mig_mode] == NVML_DEVICE_MIG_ENABLE ? FAKE_MAX_MIG : 0;
    return api_leave(NVML_SUCCESS);
}

nvmlReturn_t DECLDIR nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *migDevice) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (migDevice == NULL || index >= FAKE_MAX_MIG) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    if (device->value[K_mig_mode] != NVML_DEVICE_MIG_ENABLE) return api_leave(NVML_ERROR_NOT_SUPPORTED);
    if (index >= device->n_mig) return api_leave(NVML_ERROR_NOT_FOUND);
    *migDevice = &g_migs[device - g_devices][index];
    return api_leave(NVML_SUCCESS);
}

static nvmlReturn_t read_instance_id(nvmlDevice_t device, enum fake_key key, unsigned int *id) {
    nvmlReturn_t ret = check_device_or_mig(device);
    if (ret != NVML_SUCCESS) return ret;
    if (id == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (device->parent == NULL) return NVML_ERROR_NOT_SUPPORTED; /* not a MIG device handle */
    *id = (unsigned int)device->value[key];
    return NVML_SUCCESS;
}

nvmlReturn_t DECLDIR nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id) {
    api_enter();
    return api_leave(read_instance_id(device, K_gpu_instance_id, id));
}

nvmlReturn_t DECLDIR nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id) {
    api_enter();
    return api_leave(read_instance_id(device, K_compute_instance_id, id));
}

nvmlReturn_t DECLDIR nvmlDeviceGetArchitecture(nvmlDevice_t device, nvmlDeviceArchitecture_t *arch) {
    api_enter();
    return api_leave(read_uint(device, K_arch, arch));
}

nvmlReturn_t DECLDIR nvmlDeviceGetTemperatureThreshold(nvmlDevice_t device, nvmlTemperatureThresholds_t thresholdType,
                                                       unsigned int *temp) {
    api_enter();
    if (valid_device(device) && device->value[K_thresholds_by_tlimit] == 1 && thresholdType <= NVML_TEMPERATURE_THRESHOLD_GPU_MAX) {
        nvmlReturn_t ret = check_device(device);
        return api_leave(ret != NVML_SUCCESS ? ret : NVML_ERROR_NOT_SUPPORTED); /* superseded by the T.Limit fields */
    }
    switch (thresholdType) {
    case NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: return api_leave(read_uint(device, K_shutdown_temp_c, temp));
    case NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: return api_leave(read_uint(device, K_slowdown_temp_c, temp));
    case NVML_TEMPERATURE_THRESHOLD_MEM_MAX: return api_leave(read_uint(device, K_mem_max_temp_c, temp));
    case NVML_TEMPERATURE_THRESHOLD_GPU_MAX: return api_leave(read_uint(device, K_gpu_max_temp_c, temp));
    default: {
        nvmlReturn_t ret = check_device(device);
        return api_leave(ret != NVML_SUCCESS ? ret : NVML_ERROR_NOT_SUPPORTED);
    }
    }
}

nvmlReturn_t DECLDIR nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensorType,
                                              unsigned int *temp) {
    api_enter();
    if (sensorType != NVML_TEMPERATURE_GPU) {
        nvmlReturn_t ret = check_device(device);
        return api_leave(ret != NVML_SUCCESS ? ret : NVML_ERROR_INVALID_ARGUMENT);
    }
    return api_leave(read_uint(device, K_temp_c, temp));
}

nvmlReturn_t DECLDIR nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t device, unsigned int *maxLinkGen) {
    api_enter();
    return api_leave(read_uint(device, K_pcie_link_gen_max, maxLinkGen));
}

nvmlReturn_t DECLDIR nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t device, unsigned int *maxLinkWidth) {
    api_enter();
    return api_leave(read_uint(device, K_pcie_link_width_max, maxLinkWidth));
}

nvmlReturn_t DECLDIR nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device, unsigned int *currLinkGen) {
    api_enter();
    return api_leave(read_uint(device, K_pcie_link_gen, currLinkGen));
}

nvmlReturn_t DECLDIR nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device, unsigned int *currLinkWidth) {
    api_enter();
    return api_leave(read_uint(device, K_pcie_link_width, currLinkWidth));
}

nvmlReturn_t DECLDIR nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (utilization == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    if (device->value[K_util_gpu] == FAKE_UNSUPPORTED) return api_leave(NVML_ERROR_NOT_SUPPORTED);
    utilization->gpu = (unsigned int)device->value[K_util_gpu];
    utilization->memory = (unsigned int)device->value[K_util_mem];
    return api_leave(NVML_SUCCESS);
}

static nvmlReturn_t read_engine(nvmlDevice_t device, enum fake_key key, unsigned int *utilization,
                                unsigned int *samplingPeriodUs) {
    nvmlReturn_t ret = read_uint(device, key, utilization);
    if (ret == NVML_SUCCESS && samplingPeriodUs == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (ret == NVML_SUCCESS) *samplingPeriodUs = 167000; /* the driver's video-engine sampling period */
    return ret;
}

nvmlReturn_t DECLDIR nvmlDeviceGetEncoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                                     unsigned int *samplingPeriodUs) {
    api_enter();
    return api_leave(read_engine(device, K_enc_util, utilization, samplingPeriodUs));
}

nvmlReturn_t DECLDIR nvmlDeviceGetDecoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                                     unsigned int *samplingPeriodUs) {
    api_enter();
    return api_leave(read_engine(device, K_dec_util, utilization, samplingPeriodUs));
}

nvmlReturn_t DECLDIR nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock) {
    api_enter();
    if (type == NVML_CLOCK_SM) return api_leave(read_uint(device, K_sm_clock_mhz, clock));
    if (type == NVML_CLOCK_MEM) return api_leave(read_uint(device, K_mem_clock_mhz, clock));
    nvmlReturn_t ret = check_device(device);
    return api_leave(ret != NVML_SUCCESS ? ret : NVML_ERROR_NOT_SUPPORTED);
}

nvmlReturn_t DECLDIR nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed) {
    api_enter();
    return api_leave(read_uint(device, K_fan_pct, speed));
}

nvmlReturn_t DECLDIR nvmlDeviceGetPerformanceState(nvmlDevice_t device, nvmlPstates_t *pState) {
    api_enter();
    return api_leave(read_uint(device, K_pstate, (unsigned int *)pState));
}

static nvmlReturn_t read_reasons(nvmlDevice_t device, unsigned long long *reasons) {
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return ret;
    if (reasons == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *reasons = (unsigned long long)device->value[K_clocks_event_reasons];
    return NVML_SUCCESS;
}

#ifndef FAKE_NVML_LEGACY
nvmlReturn_t DECLDIR nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, unsigned long long *clocksEventReasons) {
    api_enter();
    return api_leave(read_reasons(device, clocksEventReasons));
}
#endif

nvmlReturn_t DECLDIR nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device,
                                                              unsigned long long *clocksThrottleReasons) {
    api_enter();
    return api_leave(read_reasons(device, clocksThrottleReasons));
}

static nvmlReturn_t list_processes(nvmlDevice_t device, int graphics, unsigned int *infoCount, nvmlProcessInfo_t *infos) {
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return ret;
    if (infoCount == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned int n = device->n_procs[graphics];
    if (*infoCount < n) {
        *infoCount = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (n > 0 && infos == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned int i = 0; i < n; i++) {
        infos[i].pid = device->procs[graphics][i].pid;
        infos[i].usedGpuMemory = device->procs[graphics][i].used_bytes;
        unsigned int gi = device->procs[graphics][i].gpu_instance_id;
        infos[i].gpuInstanceId = gi;
        infos[i].computeInstanceId = gi == FAKE_NO_INSTANCE ? FAKE_NO_INSTANCE : 0;
    }
    *infoCount = n;
    return NVML_SUCCESS;
}

/* nvmlProcessInfo_t is nvmlProcessInfo_v2_t: the _v2 and _v3 calls share the layout. */
nvmlReturn_t DECLDIR FAKE_PROCESS_CALL(GetCompute)(nvmlDevice_t device, unsigned int *infoCount,
                                                   nvmlProcessInfo_t *infos) {
    api_enter();
    return api_leave(list_processes(device, 0, infoCount, infos));
}

nvmlReturn_t DECLDIR FAKE_PROCESS_CALL(GetGraphics)(nvmlDevice_t device, unsigned int *infoCount,
                                                    nvmlProcessInfo_t *infos) {
    api_enter();
    return api_leave(list_processes(device, 1, infoCount, infos));
}

/* ---------------------------------------------------------------- NVML: field values */

#ifndef FAKE_NVML_LEGACY
/* Distance of the GPU temperature to T.Limit (the GPU max operating temperature), in °C. */
nvmlReturn_t DECLDIR nvmlDeviceGetMarginTemperature(nvmlDevice_t device, nvmlMarginTemperature_t *marginTempInfo) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (marginTempInfo == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    if (marginTempInfo->version != nvmlMarginTemperature_v1) return api_leave(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    const long long *v = device->value;
    if (v[K_gpu_max_temp_c] == FAKE_UNSUPPORTED || v[K_temp_c] == FAKE_UNSUPPORTED)
        return api_leave(NVML_ERROR_NOT_SUPPORTED);
    marginTempInfo->marginTemperature = (int)(v[K_gpu_max_temp_c] - v[K_temp_c]);
    return api_leave(NVML_SUCCESS);
}
#endif

#ifndef FAKE_NVML_NO_FIELD_VALUES
/* A threshold in the T.Limit scale: degrees below T.Limit (negative above it). */
static int tlimit_field(unsigned int field_id, nvmlDevice_t device, long long *value) {
    enum fake_key key;
    switch (field_id) {
    case NVML_FI_DEV_TEMPERATURE_SHUTDOWN_TLIMIT: key = K_shutdown_temp_c; break;
    case NVML_FI_DEV_TEMPERATURE_SLOWDOWN_TLIMIT: key = K_slowdown_temp_c; break;
    case NVML_FI_DEV_TEMPERATURE_MEM_MAX_TLIMIT: key = K_mem_max_temp_c; break;
    case NVML_FI_DEV_TEMPERATURE_GPU_MAX_TLIMIT: key = K_gpu_max_temp_c; break;
    default: return 0;
    }
    long long limit = device->value[K_gpu_max_temp_c], threshold = device->value[key];
    *value = limit == FAKE_UNSUPPORTED || threshold == FAKE_UNSUPPORTED ? FAKE_UNSUPPORTED : limit - threshold;
    return 1;
}

/* Which property a field id reads, and the value type the driver reports it in. */
static int field_source(unsigned int field_id, enum fake_key *key, nvmlValueType_t *type) {
    switch (field_id) {
#define FIELD(id, k, t) case id: *key = k; *type = t; return 1;
        FIELD(NVML_FI_DEV_ECC_SBE_VOL_TOTAL, K_ecc_corrected_volatile, NVML_VALUE_TYPE_UNSIGNED_LONG_LONG)
        FIELD(NVML_FI_DEV_ECC_DBE_VOL_TOTAL, K_ecc_uncorrected_volatile, NVML_VALUE_TYPE_UNSIGNED_LONG_LONG)
        FIELD(NVML_FI_DEV_ECC_SBE_AGG_TOTAL, K_ecc_corrected_aggregate, NVML_VALUE_TYPE_UNSIGNED_LONG_LONG)
        FIELD(NVML_FI_DEV_ECC_DBE_AGG_TOTAL, K_ecc_uncorrected_aggregate, NVML_VALUE_TYPE_UNSIGNED_LONG_LONG)
        FIELD(NVML_FI_DEV_MEMORY_TEMP, K_mem_temp_c, NVML_VALUE_TYPE_UNSIGNED_INT)
        FIELD(NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION, K_energy_mj, NVML_VALUE_TYPE_UNSIGNED_LONG_LONG)
        FIELD(NVML_FI_DEV_PCIE_REPLAY_COUNTER, K_pcie_replay_count, NVML_VALUE_TYPE_UNSIGNED_INT)
        FIELD(NVML_FI_DEV_REMAPPED_COR, K_remapped_rows_correctable, NVML_VALUE_TYPE_UNSIGNED_INT)
        FIELD(NVML_FI_DEV_REMAPPED_UNC, K_remapped_rows_uncorrectable, NVML_VALUE_TYPE_UNSIGNED_INT)
        FIELD(NVML_FI_DEV_REMAPPED_PENDING, K_remapped_rows_pending, NVML_VALUE_TYPE_UNSIGNED_INT)
        FIELD(NVML_FI_DEV_REMAPPED_FAILURE, K_remapped_rows_failure, NVML_VALUE_TYPE_UNSIGNED_INT)
        FIELD(NVML_FI_DEV_POWER_INSTANT, K_power_mw, NVML_VALUE_TYPE_UNSIGNED_INT)
        FIELD(NVML_FI_DEV_POWER_CURRENT_LIMIT, K_power_limit_mw, NVML_VALUE_TYPE_UNSIGNED_INT)
        FIELD(NVML_FI_DEV_PCIE_COUNT_TX_BYTES, K_pcie_tx_bytes, NVML_VALUE_TYPE_UNSIGNED_LONG_LONG)
        FIELD(NVML_FI_DEV_PCIE_COUNT_RX_BYTES, K_pcie_rx_bytes, NVML_VALUE_TYPE_UNSIGNED_LONG_LONG)
        FIELD(NVML_FI_DEV_GPU_TEMP, K_temp_c, NVML_VALUE_TYPE_SIGNED_INT)
#undef FIELD
    default: return 0;
    }
}

nvmlReturn_t DECLDIR nvmlDeviceGetFieldValues(nvmlDevice_t device, int valuesCount, nvmlFieldValue_t *values) {
    api_enter();
    if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
    if (!valid_device(device) || values == NULL || valuesCount < 0) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    if (device->fields_refused && device->error == NVML_SUCCESS) return api_leave(NVML_ERROR_NOT_SUPPORTED);
    long long now = advance_counters(device);
    for (int i = 0; i < valuesCount; i++) {
        nvmlFieldValue_t *fv = &values[i];
        enum fake_key key;
        nvmlValueType_t type;
        long long tlimit;
        fv->timestamp = now;
        fv->latencyUsec = 0;
        if (device->error != NVML_SUCCESS) {
            fv->nvmlReturn = device->error;
        } else if (fv->fieldId >= FAKE_FIRST_UNKNOWN_FIELD) {
            fv->nvmlReturn = NVML_ERROR_INVALID_ARGUMENT; /* a field id this driver does not know */
        } else if (tlimit_field(fv->fieldId, device, &tlimit)) {
            fv->nvmlReturn = tlimit == FAKE_UNSUPPORTED ? NVML_ERROR_NOT_SUPPORTED : NVML_SUCCESS;
            fv->valueType = NVML_VALUE_TYPE_SIGNED_INT;
            fv->value.siVal = (int)tlimit;
        } else if (!field_source(fv->fieldId, &key, &type) || device->value[key] == FAKE_UNSUPPORTED) {
            fv->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        } else {
            long long v = device->value[key];
            fv->nvmlReturn = NVML_SUCCESS;
            fv->valueType = type;
            if (type == NVML_VALUE_TYPE_UNSIGNED_LONG_LONG) fv->value.ullVal = (unsigned long long)v;
            else if (type == NVML_VALUE_TYPE_SIGNED_INT) fv->value.siVal = (int)v;
            else fv->value.uiVal = (unsigned int)v;
        }
    }
    return api_leave(NVML_SUCCESS);
}
#endif

/* ---------------------------------------------------------------- NVML: single-value counters */

nvmlReturn_t DECLDIR nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (energy == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    advance_counters(device);
    if (device->value[K_energy_mj] == FAKE_UNSUPPORTED) return api_leave(NVML_ERROR_NOT_SUPPORTED);
    *energy = (unsigned long long)device->value[K_energy_mj];
    return api_leave(NVML_SUCCESS);
}

nvmlReturn_t DECLDIR nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                                 nvmlEccCounterType_t counterType, unsigned long long *eccCounts) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (eccCounts == NULL || errorType >= NVML_MEMORY_ERROR_TYPE_COUNT || counterType >= NVML_ECC_COUNTER_TYPE_COUNT)
        return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    static const enum fake_key keys[2][2] = {
        [NVML_MEMORY_ERROR_TYPE_CORRECTED] = {[NVML_VOLATILE_ECC] = K_ecc_corrected_volatile,
                                              [NVML_AGGREGATE_ECC] = K_ecc_corrected_aggregate},
        [NVML_MEMORY_ERROR_TYPE_UNCORRECTED] = {[NVML_VOLATILE_ECC] = K_ecc_uncorrected_volatile,
                                                [NVML_AGGREGATE_ECC] = K_ecc_uncorrected_aggregate},
    };
    long long v = device->value[keys[errorType][counterType]];
    if (v == FAKE_UNSUPPORTED) return api_leave(NVML_ERROR_NOT_SUPPORTED);
    *eccCounts = (unsigned long long)v;
    return api_leave(NVML_SUCCESS);
}

nvmlReturn_t DECLDIR nvmlDeviceGetRemappedRows(nvmlDevice_t device, unsigned int *corrRows, unsigned int *uncRows,
                                               unsigned int *isPending, unsigned int *failureOccurred) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (!corrRows || !uncRows || !isPending || !failureOccurred) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    const long long *v = device->value;
    if (v[K_remapped_rows_correctable] == FAKE_UNSUPPORTED) return api_leave(NVML_ERROR_NOT_SUPPORTED);
    *corrRows = (unsigned int)v[K_remapped_rows_correctable];
    *uncRows = (unsigned int)v[K_remapped_rows_uncorrectable];
    *isPending = (unsigned int)v[K_remapped_rows_pending];
    *failureOccurred = (unsigned int)v[K_remapped_rows_failure];
    return api_leave(NVML_SUCCESS);
}

nvmlReturn_t DECLDIR nvmlDeviceGetPcieReplayCounter(nvmlDevice_t device, unsigned int *value) {
    api_enter();
    return api_leave(read_uint(device, K_pcie_replay_count, value));
}

/* KB/s (1 KB = 1024 bytes) over the driver's last 20 ms sample: here the configured rate. */
nvmlReturn_t DECLDIR nvmlDeviceGetPcieThroughput(nvmlDevice_t device, nvmlPcieUtilCounter_t counter, unsigned int *value) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (value == NULL || (counter != NVML_PCIE_UTIL_TX_BYTES && counter != NVML_PCIE_UTIL_RX_BYTES))
        return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    enum fake_key key = counter == NVML_PCIE_UTIL_TX_BYTES ? K_pcie_tx_bytes_s : K_pcie_rx_bytes_s;
    if (device->value[key == K_pcie_tx_bytes_s ? K_pcie_tx_bytes : K_pcie_rx_bytes] == FAKE_UNSUPPORTED)
        return api_leave(NVML_ERROR_NOT_SUPPORTED);
    *value = (unsigned int)(device->value[key] / 1024);
    return api_leave(NVML_SUCCESS);
}

/* ---------------------------------------------------------------- NVML: GPM (Hopper and newer) */

#ifndef FAKE_NVML_LEGACY
#define FAKE_MAX_SAMPLES 256

struct nvmlGpmSample_st {
    int in_use;
    nvmlDevice_t device; /* NULL until nvmlGpmSampleGet fills it */
    long long ts_us;
    double busy[FAKE_GPM_METRICS];
};

static struct nvmlGpmSample_st g_samples[FAKE_MAX_SAMPLES];
static const unsigned int GPM_METRIC_IDS[FAKE_GPM_METRICS] = {
    NVML_GPM_METRIC_GRAPHICS_UTIL, NVML_GPM_METRIC_SM_UTIL, NVML_GPM_METRIC_SM_OCCUPANCY,
    NVML_GPM_METRIC_ANY_TENSOR_UTIL, NVML_GPM_METRIC_DRAM_BW_UTIL};

static int gpm_supported(nvmlDevice_t d) {
    return d->value[K_arch] >= NVML_DEVICE_ARCH_HOPPER && d->value[K_gpm_sm_util] != FAKE_UNSUPPORTED;
}

static int valid_sample(nvmlGpmSample_t sample) {
    return sample >= g_samples && sample < g_samples + FAKE_MAX_SAMPLES && sample->in_use;
}

nvmlReturn_t DECLDIR nvmlGpmQueryDeviceSupport(nvmlDevice_t device, nvmlGpmSupport_t *gpmSupport) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (gpmSupport == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    if (gpmSupport->version != NVML_GPM_SUPPORT_VERSION) return api_leave(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    gpmSupport->isSupportedDevice = (unsigned int)gpm_supported(device);
    return api_leave(NVML_SUCCESS);
}

nvmlReturn_t DECLDIR nvmlGpmSampleAlloc(nvmlGpmSample_t *gpmSample) {
    api_enter();
    if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
    if (gpmSample == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    for (int i = 0; i < FAKE_MAX_SAMPLES; i++) {
        if (!g_samples[i].in_use) {
            memset(&g_samples[i], 0, sizeof g_samples[i]);
            g_samples[i].in_use = 1;
            *gpmSample = &g_samples[i];
            return api_leave(NVML_SUCCESS);
        }
    }
    return api_leave(NVML_ERROR_MEMORY);
}

nvmlReturn_t DECLDIR nvmlGpmSampleFree(nvmlGpmSample_t gpmSample) {
    api_enter();
    if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
    if (!valid_sample(gpmSample)) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    gpmSample->in_use = 0;
    return api_leave(NVML_SUCCESS);
}

static void take_sample(nvmlDevice_t counted, nvmlGpmSample_t gpmSample) {
    gpmSample->device = counted;
    gpmSample->ts_us = advance_counters(counted);
    memcpy(gpmSample->busy, counted->gpm_busy, sizeof gpmSample->busy);
}

nvmlReturn_t DECLDIR nvmlGpmSampleGet(nvmlDevice_t device, nvmlGpmSample_t gpmSample) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (!valid_sample(gpmSample)) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    if (!gpm_supported(device)) return api_leave(NVML_ERROR_NOT_SUPPORTED);
    take_sample(device, gpmSample);
    return api_leave(NVML_SUCCESS);
}

/* A sample of one GPU instance of a MIG-enabled GPU: that instance's own counters. */
nvmlReturn_t DECLDIR nvmlGpmMigSampleGet(nvmlDevice_t device, unsigned int gpuInstanceId, nvmlGpmSample_t gpmSample) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (!valid_sample(gpmSample)) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    if (!gpm_supported(device) || device->value[K_mig_mode] != NVML_DEVICE_MIG_ENABLE)
        return api_leave(NVML_ERROR_NOT_SUPPORTED);
    for (unsigned int slot = 0; slot < device->n_mig; slot++) {
        nvmlDevice_t mig = &g_migs[device - g_devices][slot];
        if (mig->value[K_gpu_instance_id] == (long long)gpuInstanceId) {
            take_sample(mig, gpmSample);
            return api_leave(NVML_SUCCESS);
        }
    }
    return api_leave(NVML_ERROR_INVALID_ARGUMENT); /* no such GPU instance */
}

/* Each asked metric from the two samples' counter difference; metrics the board does not model
 * answer NOT_SUPPORTED in their own nvmlReturn. */
nvmlReturn_t DECLDIR nvmlGpmMetricsGet(nvmlGpmMetricsGet_t *metricsGet) {
    api_enter();
    if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
    if (metricsGet == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    if (metricsGet->version != NVML_GPM_METRICS_GET_VERSION) return api_leave(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    nvmlGpmSample_t a = metricsGet->sample1, b = metricsGet->sample2;
    if (!valid_sample(a) || !valid_sample(b) || a->device == NULL || a->device != b->device ||
        b->ts_us <= a->ts_us || metricsGet->numMetrics > NVML_GPM_METRIC_MAX)
        return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    double elapsed = (double)(b->ts_us - a->ts_us);
    for (unsigned int i = 0; i < metricsGet->numMetrics; i++) {
        nvmlGpmMetric_t *metric = &metricsGet->metrics[i];
        metric->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        metric->value = 0.0;
        metric->metricInfo.shortName = metric->metricInfo.longName = metric->metricInfo.unit = NULL;
        for (int m = 0; m < FAKE_GPM_METRICS; m++) {
            if (GPM_METRIC_IDS[m] == metric->metricId) {
                metric->nvmlReturn = NVML_SUCCESS;
                metric->value = (b->busy[m] - a->busy[m]) / elapsed / 100.0; /* hundredths -> % */
            }
        }
    }
    return api_leave(NVML_SUCCESS);
}
#endif

/* ---------------------------------------------------------------- NVML: events */

static int valid_set(nvmlEventSet_t set) {
    return set >= g_sets && set < g_sets + FAKE_MAX_SETS && set->in_use;
}

nvmlReturn_t DECLDIR nvmlEventSetCreate(nvmlEventSet_t *set) {
    api_enter();
    if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
    if (set == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    for (int s = 0; s < FAKE_MAX_SETS; s++) {
        if (!g_sets[s].in_use) {
            memset(&g_sets[s], 0, sizeof g_sets[s]);
            g_sets[s].in_use = 1;
            *set = &g_sets[s];
            return api_leave(NVML_SUCCESS);
        }
    }
    return api_leave(NVML_ERROR_MEMORY);
}

nvmlReturn_t DECLDIR nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set) {
    api_enter();
    nvmlReturn_t ret = check_device(device);
    if (ret != NVML_SUCCESS) return api_leave(ret);
    if (!valid_set(set)) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    if (eventTypes & ~(unsigned long long)FAKE_SUPPORTED_EVENTS) return api_leave(NVML_ERROR_NOT_SUPPORTED);
    set->mask[device - g_devices] |= eventTypes;
    return api_leave(NVML_SUCCESS);
}

static int set_watches_lost_device(nvmlEventSet_t set) {
    for (unsigned int i = 0; i < g_device_count; i++)
        if (set->mask[i] && g_devices[i].error == NVML_ERROR_GPU_IS_LOST) return 1;
    return 0;
}

/* Queued events first; then GPU_IS_LOST if a watched GPU fell off the bus; else wait up to timeoutms. */
nvmlReturn_t DECLDIR nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms) {
    __atomic_add_fetch(&g_waits, 1, __ATOMIC_RELAXED);
    sleep_latency();
    pthread_mutex_lock(&g_lock);
    if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
    if (!valid_set(set) || data == NULL) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeoutms / 1000;
    deadline.tv_nsec += (long)(timeoutms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    for (;;) {
        if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
        if (!valid_set(set)) return api_leave(NVML_ERROR_INVALID_ARGUMENT); /* freed while waiting */
        if (set->count > 0) {
            struct fake_event *e = &set->queue[set->head];
            set->head = (set->head + 1) % FAKE_MAX_QUEUED;
            set->count--;
            data->device = e->device;
            data->eventType = e->type;
            data->eventData = e->data;
            data->gpuInstanceId = 0xFFFFFFFFu;
            data->computeInstanceId = 0xFFFFFFFFu;
            return api_leave(NVML_SUCCESS);
        }
        if (set_watches_lost_device(set)) return api_leave(NVML_ERROR_GPU_IS_LOST);
        if (pthread_cond_timedwait(&g_event_cond, &g_lock, &deadline) == ETIMEDOUT && set->count == 0)
            return api_leave(NVML_ERROR_TIMEOUT);
    }
}

nvmlReturn_t DECLDIR nvmlEventSetFree(nvmlEventSet_t set) {
    api_enter();
    if (g_init_count == 0) return api_leave(NVML_ERROR_UNINITIALIZED);
    if (!valid_set(set)) return api_leave(NVML_ERROR_INVALID_ARGUMENT);
    set->in_use = 0;
    pthread_cond_broadcast(&g_event_cond);
    return api_leave(NVML_SUCCESS);
}
