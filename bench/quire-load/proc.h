/*
 * proc.h - what the load generator reads about processes from /proc (Linux):
 * a process's resident set (VmRSS) and open descriptor count, the load
 * average, and raising the soft fd limit to the hard one.
 */
#ifndef QL_PROC_H
#define QL_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* VmRSS of pid (0: this process) in KiB, or -1 when it cannot be read. */
long ql_proc_rss_kb(pid_t pid);
/* Entries of /proc/pid/fd (0: this process), or -1. */
long ql_proc_fds(pid_t pid);
/* The 1-minute load average, or -1. */
double ql_loadavg(void);
/* Raise RLIMIT_NOFILE's soft limit to the hard one; returns the new soft
 * limit (or -1). */
long ql_raise_nofile(void);

#endif
