#ifndef GALLEY_CGALLEYSYSTEM_H
#define GALLEY_CGALLEYSYSTEM_H

#include <spawn.h>
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/types.h>

/// Linux calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module does not set.
int galley_pipe_cloexec(int fds[2]);
int galley_set_limit(pid_t pid, int resource, unsigned long long bytes);
int galley_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
int galley_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);
/// A connected pair of Unix stream sockets, both close-on-exec.
int galley_socketpair_cloexec(int fds[2]);
/// Makes `pid` batch work (SCHED_BATCH), as `galley_spawn` does before the exec (see there):
/// glibc's posix_spawn takes no SCHED_BATCH.
int galley_set_batch(pid_t pid);


/// What `galley_spawn` does to a new process's view of the files, in this order: every `bind`
/// target is opened first; then the `cover`s are mounted (a tmpfs over a folder, `source` its
/// options); then each `bind` puts the folder opened before back at its place, read-only, creating
/// the folders on its way; then each `hide` puts `/dev/null` over a file, or an empty tmpfs
/// (`source` its options) over a folder. A cover or hide whose target no longer exists is skipped.
enum galley_mount_kind { GALLEY_MOUNT_COVER = 0, GALLEY_MOUNT_BIND = 1, GALLEY_MOUNT_HIDE = 2 };

struct galley_mount {
    int kind;
    const char *source;
    const char *target;
};

/// A process to start with `galley_spawn`.
struct galley_spawn_request {
    /// The executable; run through a descriptor opened before privileges are dropped when
    /// `exec_by_descriptor` is set (it need not be reachable by the new identity).
    const char *path;
    int exec_by_descriptor;
    char *const *argv;
    char *const *envp;
    /// The working folder, or NULL.
    const char *directory;
    /// Becomes stdout and stderr; stdin is /dev/null.
    int output;
    /// Becomes descriptor 3, or -1.
    int channel;
    /// Unshare the mount namespace and apply `mounts`.
    int isolate_files;
    /// Unshare a user namespace first, mapping the caller's own uid and gid (an unprivileged host).
    int user_namespace;
    const struct galley_mount *mounts;
    int mount_count;
    /// The identity to run as; (uid_t)-1 keeps the caller's.
    uid_t uid;
    gid_t gid;
};

/// Starts a process as `request` says: a process group of its own, default signal dispositions
/// and an empty mask, no descriptor but 0, 1, 2 (and 3), no new privileges. Returns 0 and the
/// pid, or an errno and which step failed (a short name, static storage).
int galley_spawn(const struct galley_spawn_request *request, pid_t *pid, const char **failed_step);

/// Makes this process's /proc entries root's (PR_SET_DUMPABLE 0).
int galley_set_undumpable(void);

/// Whether this process may create a user namespace (tried in a short-lived child).
int galley_can_unshare_user(void);


// MARK: - A one-shot invocation inside the command's own process

/// The faults a guarded invocation may end with. Each has two prepared texts, written with
/// async-signal-safe calls when it happens: the caller's answer (to the result descriptor) and the
/// log lines (to the log descriptor). In them `\x01D` becomes the invocation's duration in ms with
/// two decimals (0.00 in the init phase), `\x01B` its billed ms, `\x01I` the init phase's duration,
/// `\x01P` the request prefix (`RequestId: … `, none in the init phase), `\x01M` the peak memory in
/// MB, `\x01S` the exit status, `\x01N` the signal's name, `\x01T` the time (ISO 8601, UTC, ms).
enum galley_guard_fault {
    GALLEY_FAULT_CRASH = 0,
    GALLEY_FAULT_OUT_OF_MEMORY = 1,
    GALLEY_FAULT_EXIT = 2,
    /// The init phase's deadline.
    GALLEY_FAULT_INIT_TIMEOUT = 3,
    /// The invocation's deadline.
    GALLEY_FAULT_TIMEOUT = 4,
};

/// Installs the signal handlers (on an alternate stack), the exit hook and the watchdog thread, once.
int galley_guard_install(int result_descriptor, int log_descriptor);

/// Sets a fault's texts (copied), or the request prefix (`fault` -1, `result` the text). Not while armed.
void galley_guard_set(int fault, const char *result, const char *log);

/// From now until `galley_guard_disarm`, a fault writes its texts and ends the process with
/// status 1: the init phase (`init_ns` negative) or the invocation after an init phase of
/// `init_ns`. `started_ns` and `deadline_ns` are CLOCK_MONOTONIC nanoseconds.
void galley_guard_arm(long long started_ns, long long deadline_ns, long long init_ns);

/// Returns 1 when the invocation ended before any fault claimed it (its answer is the caller's to
/// write), 0 when a fault is being reported (the process is ending).
int galley_guard_disarm(void);

/// CLOCK_MONOTONIC now, in nanoseconds.
long long galley_monotonic_ns(void);

#endif
