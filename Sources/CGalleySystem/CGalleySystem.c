#define _GNU_SOURCE
#include "CGalleySystem.h"

#include <fcntl.h>
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

/// Appends `value` in decimal to `buffer` at `*at`.
static void child_append_number(char *buffer, size_t *at, unsigned long value) {
    char digits[24];
    int count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value && count < 24);
    while (count) buffer[(*at)++] = digits[--count];
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
