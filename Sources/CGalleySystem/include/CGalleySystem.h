#ifndef GALLEY_CGALLEYSYSTEM_H
#define GALLEY_CGALLEYSYSTEM_H

#include <spawn.h>
#include <sys/epoll.h>
#include <sys/types.h>

/// Linux calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module does not set.
int galley_pipe_cloexec(int fds[2]);
int galley_set_limit(pid_t pid, int resource, unsigned long long bytes);
int galley_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
int galley_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);
/// A connected pair of Unix stream sockets, both close-on-exec.
int galley_socketpair_cloexec(int fds[2]);

#endif
