/*
 * proc.c - /proc readings and the fd limit (proc.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "proc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

long ql_proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	if (pid > 0)
		snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	else
		snprintf(path, sizeof path, "/proc/self/status");
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

long ql_proc_fds(pid_t pid)
{
	char path[64];
	if (pid > 0)
		snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
	else
		snprintf(path, sizeof path, "/proc/self/fd");
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	long n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return pid > 0 ? n : n - 1; /* our own count includes the DIR's fd */
}

double ql_loadavg(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	if (f == NULL)
		return -1;
	double l = -1;
	if (fscanf(f, "%lf", &l) != 1)
		l = -1;
	fclose(f);
	return l;
}

long ql_raise_nofile(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) != 0)
		return -1;
	if (r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &r) != 0)
			getrlimit(RLIMIT_NOFILE, &r);
	}
	return (long)r.rlim_cur;
}
