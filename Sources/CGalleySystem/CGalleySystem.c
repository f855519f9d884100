#define _GNU_SOURCE
#include "CGalleySystem.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int galley_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int galley_set_limit(pid_t pid, int resource, unsigned long long bytes) {
    struct rlimit limit = {.rlim_cur = bytes, .rlim_max = bytes};
    return prlimit(pid, resource, &limit, NULL);
}

int galley_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int galley_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

// Function code is batch work: a worker woken by an invocation does not preempt the host's
// threads, which finish what they are doing (more invocations to hand out, answers to send) first.
// Same share of the CPU; a function may set itself back, gaining nothing over others.
int galley_set_batch(pid_t pid) {
    struct sched_param parameter = {.sched_priority = 0};
    return sched_setscheduler(pid, SCHED_BATCH, &parameter);
}

int galley_socketpair_cloexec(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
}

// MARK: - Spawning into a sandbox

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// Only async-signal-safe calls from here to the exec: the child of a threaded process.

struct child_failure {
    int error;
    int step;
};

static const char *const step_names[] = {
    "fork", "unshare(CLONE_NEWUSER)", "uid_map", "unshare(CLONE_NEWNS)", "mount propagation",
    "open a folder to keep", "mount tmpfs", "mkdir", "bind mount", "read-only remount", "hide",
    "setgroups", "setgid", "setuid", "no_new_privs", "chdir", "descriptors", "open executable",
    "exec", "too many mounts",
};

static size_t child_length(const char *text) {
    size_t length = 0;
    while (text[length]) length++;
    return length;
}

/// Writes `value` in decimal, zero-padded to `width` digits, at `out`; returns how many bytes.
/// Async-signal-safe: used between fork and exec, and in the one-shot guard's signal handler.
static size_t decimal(char *out, unsigned long long value, int width) {
    char digits[24];
    int count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value && count < 20);
    while (count < width && count < 24) digits[count++] = '0';
    size_t length = 0;
    while (count) out[length++] = digits[--count];
    return length;
}

/// Appends `value` in decimal to `buffer` at `*at`.
static void child_append_number(char *buffer, size_t *at, unsigned long value) {
    *at += decimal(buffer + *at, value, 1);
}

static void child_append(char *buffer, size_t *at, const char *text) {
    size_t length = child_length(text);
    memcpy(buffer + *at, text, length);
    *at += length;
}

static int child_write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t length = (ssize_t)child_length(text);
    ssize_t written = write(fd, text, (size_t)length);
    close(fd);
    return written == length ? 0 : -1;
}

/// `mkdir -p`, for a path of at most PATH_MAX bytes.
static int child_make_folders(const char *path) {
    char buffer[PATH_MAX];
    size_t length = child_length(path);
    if (length >= sizeof buffer) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buffer, path, length + 1);
    for (size_t index = 1; index <= length; index++) {
        if (buffer[index] != '/' && buffer[index] != 0) continue;
        char kept = buffer[index];
        buffer[index] = 0;
        if (mkdir(buffer, 0755) != 0 && errno != EEXIST) return -1;
        buffer[index] = kept;
    }
    return 0;
}

static int child_map_identity(uid_t uid, gid_t gid) {
    char line[64];
    size_t at = 0;
    child_append_number(line, &at, uid);
    line[at++] = ' ';
    child_append_number(line, &at, uid);
    child_append(line, &at, " 1");
    line[at] = 0;
    if (child_write_file("/proc/self/uid_map", line) != 0) return -1;
    if (child_write_file("/proc/self/setgroups", "deny") != 0 && errno != ENOENT) return -1;
    at = 0;
    child_append_number(line, &at, gid);
    line[at++] = ' ';
    child_append_number(line, &at, gid);
    child_append(line, &at, " 1");
    line[at] = 0;
    return child_write_file("/proc/self/gid_map", line);
}

#define GALLEY_MAX_MOUNTS 256

/// Arranges the new process's files; returns the failed step or -1.
static int child_mount(const struct galley_spawn_request *request) {
    if (request->mount_count > GALLEY_MAX_MOUNTS) return 19;
    if (unshare(CLONE_NEWNS) != 0) return 3;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return 4;
    int kept[GALLEY_MAX_MOUNTS];
    for (int index = 0; index < request->mount_count; index++) {
        kept[index] = -1;
        const struct galley_mount *entry = &request->mounts[index];
        if (entry->kind != GALLEY_MOUNT_BIND) continue;
        kept[index] = open(entry->target, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (kept[index] < 0) return 5;
    }
    for (int index = 0; index < request->mount_count; index++) {
        const struct galley_mount *entry = &request->mounts[index];
        if (entry->kind != GALLEY_MOUNT_COVER) continue;
        if (mount("tmpfs", entry->target, "tmpfs", MS_NOSUID | MS_NODEV, entry->source) != 0 && errno != ENOENT)
            return 6;
    }
    for (int index = 0; index < request->mount_count; index++) {
        const struct galley_mount *entry = &request->mounts[index];
        if (entry->kind != GALLEY_MOUNT_BIND) continue;
        if (child_make_folders(entry->target) != 0) return 7;
        char source[64];
        size_t at = 0;
        child_append(source, &at, "/proc/self/fd/");
        child_append_number(source, &at, (unsigned long)kept[index]);
        source[at] = 0;
        if (mount(source, entry->target, NULL, MS_BIND | MS_REC, NULL) != 0) return 8;
        unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;
        if (mount(NULL, entry->target, NULL, flags, NULL) != 0) return 9;
        close(kept[index]);
    }
    for (int index = 0; index < request->mount_count; index++) {
        const struct galley_mount *entry = &request->mounts[index];
        if (entry->kind != GALLEY_MOUNT_HIDE) continue;
        struct stat info;
        if (lstat(entry->target, &info) != 0) {
            if (errno == ENOENT) continue;
            return 10;
        }
        int status = S_ISDIR(info.st_mode)
            ? mount("tmpfs", entry->target, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, entry->source)
            : mount("/dev/null", entry->target, NULL, MS_BIND, NULL);
        if (status != 0) return 10;
    }
    return -1;
}

static int child_prepare(const struct galley_spawn_request *request, int *executable) {
    sigset_t none;
    sigemptyset(&none);
    struct sigaction defaults;
    memset(&defaults, 0, sizeof defaults);
    defaults.sa_handler = SIG_DFL;
    for (int signal = 1; signal < NSIG; signal++) sigaction(signal, &defaults, NULL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    galley_set_batch(0);

    if (request->exec_by_descriptor) {
        *executable = open(request->path, O_PATH | O_CLOEXEC);
        if (*executable < 0) return 17;
    }
    uid_t outer_uid = getuid();
    gid_t outer_gid = getgid();
    if (request->user_namespace) {
        // A non-dumpable host's /proc/self is root's: this child's own maps must be its to write.
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        if (unshare(CLONE_NEWUSER) != 0) return 1;
        if (child_map_identity(outer_uid, outer_gid) != 0) return 2;
    }
    if (request->isolate_files) {
        int step = child_mount(request);
        if (step >= 0) return step;
    }
    if (request->uid != (uid_t)-1) {
        if (syscall(SYS_setgroups, 0, NULL) != 0) return 11;
        if (syscall(SYS_setresgid, request->gid, request->gid, request->gid) != 0) return 12;
        if (syscall(SYS_setresuid, request->uid, request->uid, request->uid) != 0) return 13;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 14;
    if (request->directory && chdir(request->directory) != 0) return 15;

    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0) return 16;
    if (dup2(null, 0) < 0 || dup2(request->output, 1) < 0 || dup2(request->output, 2) < 0) return 16;
    if (request->channel >= 0 && dup2(request->channel, 3) < 0) return 16;
    // Everything else closes at the exec (the failure pipe too, which is how the parent learns of success).
    int first = request->channel >= 0 ? 4 : 3;
    if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) != 0) return 16;
    return -1;
}

int galley_spawn(const struct galley_spawn_request *request, pid_t *pid, const char **failed_step) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        *failed_step = "pipe";
        return errno;
    }
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t child = fork();
    if (child == 0) {
        close(report[0]);
        int executable = -1;
        int step = child_prepare(request, &executable);
        if (step < 0) {
            step = 18;
            if (executable >= 0) {
                syscall(SYS_execveat, executable, "", request->argv, request->envp, AT_EMPTY_PATH);
            } else {
                execve(request->path, request->argv, request->envp);
            }
        }
        struct child_failure failure = {.error = errno, .step = step};
        ssize_t ignored = write(report[1], &failure, sizeof failure);
        (void)ignored;
        _exit(127);
    }
    int fork_error = errno;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    close(report[1]);
    if (child < 0) {
        close(report[0]);
        *failed_step = step_names[0];
        return fork_error;
    }
    struct child_failure failure;
    ssize_t count;
    do {
        count = read(report[0], &failure, sizeof failure);
    } while (count < 0 && errno == EINTR);
    close(report[0]);
    if (count == sizeof failure) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        *failed_step = step_names[failure.step];
        return failure.error;
    }
    *pid = child;
    return 0;
}

int galley_can_unshare_user(void) {
    pid_t child = fork();
    if (child == 0) _exit(unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0 ? 0 : 1);
    if (child < 0) return 0;
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int galley_set_undumpable(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

// MARK: - Guarding a one-shot invocation in this process

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static int guard_result_fd = -1;
static int guard_log_fd = -1;
static char *guard_texts[5][2];
static char *guard_prefix;
static _Atomic long long guard_init_ns = -1;
// 0 idle, 1 armed, 2 claimed by a fault, 3 disarmed.
static _Atomic int guard_state = 0;
static _Atomic long long guard_started_ns = 0;
static _Atomic long long guard_deadline_ns = 0;
static pthread_mutex_t guard_wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t guard_wake;

long long galley_monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static void guard_write_all(int fd, const char *bytes, size_t count) {
    while (count > 0) {
        ssize_t written = write(fd, bytes, count);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) return;
        bytes += written;
        count -= (size_t)written;
    }
}

static size_t guard_number(char *out, unsigned long long value, int width) { return decimal(out, value, width); }

static const char *guard_signal_name(int signal) {
    switch (signal) {
    case SIGILL: return "illegal instruction";
    case SIGTRAP: return "trace/breakpoint trap";
    case SIGSEGV: return "segmentation fault";
    case SIGBUS: return "bus error";
    case SIGFPE: return "floating point exception";
    case SIGABRT: return "aborted";
    default: return "killed";
    }
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
static void guard_civil(long long days, long long *year, unsigned *month, unsigned *day) {
    days += 719468;
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = y + (*month <= 2);
}

static size_t guard_timestamp(char *out) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long seconds = now.tv_sec;
    long long days = seconds / 86400;
    long long rest = seconds % 86400;
    long long year;
    unsigned month, day;
    guard_civil(days, &year, &month, &day);
    size_t at = 0;
    at += guard_number(out + at, (unsigned long long)year, 4);
    out[at++] = '-';
    at += guard_number(out + at, month, 2);
    out[at++] = '-';
    at += guard_number(out + at, day, 2);
    out[at++] = 'T';
    at += guard_number(out + at, (unsigned long long)(rest / 3600), 2);
    out[at++] = ':';
    at += guard_number(out + at, (unsigned long long)(rest / 60 % 60), 2);
    out[at++] = ':';
    at += guard_number(out + at, (unsigned long long)(rest % 60), 2);
    out[at++] = '.';
    at += guard_number(out + at, (unsigned long long)(now.tv_nsec / 1000000), 3);
    out[at++] = 'Z';
    return at;
}

/// Writes `text` to `fd`, filling in its placeholders.
static void guard_render(int fd, const char *text, int status, int signal) {
    if (!text) return;
    long long elapsed = galley_monotonic_ns() - atomic_load(&guard_started_ns);
    if (elapsed < 0) elapsed = 0;
    long long init = atomic_load(&guard_init_ns);
    int invoking = init >= 0;
    long long duration = invoking ? elapsed : 0;
    if (!invoking) init = elapsed;
    struct rusage usage;
    long peak_kb = getrusage(RUSAGE_SELF, &usage) == 0 ? usage.ru_maxrss : 0;
    char buffer[512];
    size_t at = 0;
    for (const char *cursor = text; *cursor; cursor++) {
        if (at > sizeof buffer - 160) {
            guard_write_all(fd, buffer, at);
            at = 0;
        }
        if (*cursor != '\x01' || !cursor[1]) {
            buffer[at++] = *cursor;
            continue;
        }
        cursor++;
        switch (*cursor) {
        case 'D':
        case 'I': {
            long long nanoseconds = *cursor == 'D' ? duration : init;
            unsigned long long hundredths = (unsigned long long)((nanoseconds + 5000) / 10000);
            at += guard_number(buffer + at, hundredths / 100, 1);
            buffer[at++] = '.';
            at += guard_number(buffer + at, hundredths % 100, 2);
            break;
        }
        case 'B': {
            unsigned long long billed = (unsigned long long)((duration + 999999) / 1000000);
            at += guard_number(buffer + at, billed ? billed : 1, 1);
            break;
        }
        case 'P': {
            if (!invoking || !guard_prefix) break;
            size_t length = strlen(guard_prefix);
            if (length > 128) length = 128;
            memcpy(buffer + at, guard_prefix, length);
            at += length;
            break;
        }
        case 'M': at += guard_number(buffer + at, (unsigned long long)((peak_kb + 1023) / 1024), 1); break;
        case 'S': at += guard_number(buffer + at, (unsigned long long)(status & 0xff), 1); break;
        case 'N': {
            const char *name = guard_signal_name(signal);
            size_t length = strlen(name);
            memcpy(buffer + at, name, length);
            at += length;
            break;
        }
        case 'T': at += guard_timestamp(buffer + at); break;
        default: buffer[at++] = *cursor;
        }
    }
    guard_write_all(fd, buffer, at);
}

/// Claims the invocation for a fault; returns 0 when it was not armed or already claimed.
static int guard_claim(void) {
    int armed = 1;
    return atomic_compare_exchange_strong(&guard_state, &armed, 2);
}

static _Noreturn void guard_report(int fault, int status, int signal) {
    guard_render(guard_log_fd, guard_texts[fault][1], status, signal);
    guard_render(guard_result_fd, guard_texts[fault][0], status, signal);
    _exit(1);
}

static void guard_on_signal(int signal, siginfo_t *info, void *context) {
    (void)info;
    (void)context;
    // Swift traps right after a failed allocation, with malloc's ENOMEM still in errno.
    int out_of_memory = errno == ENOMEM && (signal == SIGILL || signal == SIGTRAP || signal == SIGABRT);
    if (guard_claim()) guard_report(out_of_memory ? GALLEY_FAULT_OUT_OF_MEMORY : GALLEY_FAULT_CRASH, 0, signal);
    // Not ours to report: the default action, as if no handler were there.
    struct sigaction defaults;
    memset(&defaults, 0, sizeof defaults);
    defaults.sa_handler = SIG_DFL;
    sigaction(signal, &defaults, NULL);
    raise(signal);
}

static void guard_on_exit(int status, void *argument) {
    (void)argument;
    if (guard_claim()) guard_report(GALLEY_FAULT_EXIT, status, 0);
}

static void *guard_watchdog(void *argument) {
    (void)argument;
    pthread_mutex_lock(&guard_wake_lock);
    for (;;) {
        long long deadline = atomic_load(&guard_deadline_ns);
        int state = atomic_load(&guard_state);
        if (state == 1 && deadline > 0 && galley_monotonic_ns() >= deadline) {
            pthread_mutex_unlock(&guard_wake_lock);
            if (guard_claim()) {
                guard_report(atomic_load(&guard_init_ns) >= 0 ? GALLEY_FAULT_TIMEOUT : GALLEY_FAULT_INIT_TIMEOUT, 0, 0);
            }
            pthread_mutex_lock(&guard_wake_lock);
            continue;
        }
        if (state == 1 && deadline > 0) {
            struct timespec until = {.tv_sec = deadline / 1000000000LL, .tv_nsec = deadline % 1000000000LL};
            pthread_cond_timedwait(&guard_wake, &guard_wake_lock, &until);
        } else {
            pthread_cond_wait(&guard_wake, &guard_wake_lock);
        }
    }
    return NULL;
}

int galley_guard_install(int result_descriptor, int log_descriptor) {
    static int installed = 0;
    guard_result_fd = result_descriptor;
    guard_log_fd = log_descriptor;
    if (installed) return 0;
    installed = 1;
    // A stack overflow still gets its handler.
    stack_t stack = {.ss_sp = malloc(64 * 1024), .ss_size = 64 * 1024, .ss_flags = 0};
    if (stack.ss_sp) sigaltstack(&stack, NULL);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = guard_on_signal;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    int signals[] = {SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT};
    for (unsigned index = 0; index < sizeof signals / sizeof signals[0]; index++) {
        sigaction(signals[index], &action, NULL);
    }
    on_exit(guard_on_exit, NULL);
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&guard_wake, &attributes);
    pthread_condattr_destroy(&attributes);
    pthread_t thread;
    pthread_attr_t thread_attributes;
    pthread_attr_init(&thread_attributes);
    pthread_attr_setdetachstate(&thread_attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&thread_attributes, 64 * 1024);
    int status = pthread_create(&thread, &thread_attributes, guard_watchdog, NULL);
    pthread_attr_destroy(&thread_attributes);
    return status;
}

void galley_guard_set(int fault, const char *result, const char *log) {
    if (fault == -1) {
        free(guard_prefix);
        guard_prefix = result ? strdup(result) : NULL;
        return;
    }
    if (fault < 0 || fault > 4) return;
    free(guard_texts[fault][0]);
    free(guard_texts[fault][1]);
    guard_texts[fault][0] = result ? strdup(result) : NULL;
    guard_texts[fault][1] = log ? strdup(log) : NULL;
}

void galley_guard_arm(long long started_ns, long long deadline_ns, long long init_ns) {
    pthread_mutex_lock(&guard_wake_lock);
    atomic_store(&guard_init_ns, init_ns);
    atomic_store(&guard_started_ns, started_ns);
    atomic_store(&guard_deadline_ns, deadline_ns);
    atomic_store(&guard_state, 1);
    pthread_cond_signal(&guard_wake);
    pthread_mutex_unlock(&guard_wake_lock);
}

int galley_guard_disarm(void) {
    int armed = 1;
    if (!atomic_compare_exchange_strong(&guard_state, &armed, 3)) {
        // A fault claimed it: its report is being written and the process is ending.
        if (armed == 2) for (;;) pause();
        return 1;
    }
    pthread_mutex_lock(&guard_wake_lock);
    pthread_cond_signal(&guard_wake);
    pthread_mutex_unlock(&guard_wake_lock);
    return 1;
}
