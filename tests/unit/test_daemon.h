/* test_daemon.h - sluiced as a child process for the tests that talk to
 * it over real sockets: start it, learn its port, drive it with
 * sluicectl, stop it and read how it exited. */
#ifndef TEST_DAEMON_H
#define TEST_DAEMON_H

#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t daemon_pid;
static int daemon_port;

/* Starts sluiced with these arguments (after the binary), learns its port
 * from the first line it prints. */
static void spawn_daemon(const char *const *args)
{
    const char *bin = getenv("SLUICED_BIN");
    if (!bin)
        cr_skip_test("SLUICED_BIN is not set (run through meson test)");
    const char *argv[32] = {bin};
    int n = 1;
    while (args[n - 1] && n < 31)
        argv[n] = args[n - 1], n++;
    argv[n] = NULL;
    int p[2];
    cr_assert_eq(pipe(p), 0);
    daemon_pid = fork();
    cr_assert_geq(daemon_pid, 0);
    if (daemon_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test must not leave it behind */
        dup2(p[1], 1);
        close(p[0]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    char line[512] = "";
    cr_assert_not_null(fgets(line, sizeof line, f), "sluiced printed nothing");
    fclose(f);
    const char *colon = strstr(line, "127.0.0.1:");
    cr_assert_not_null(colon, "%s", line);
    daemon_port = atoi(colon + 10);
    cr_assert_gt(daemon_port, 0, "%s", line);
}

static int stop_daemon(void)
{
    kill(daemon_pid, SIGTERM);
    int status = -1;
    for (int i = 0; i < 100; i++) { /* 10 s */
        if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(100000);
    }
    kill(daemon_pid, SIGKILL);
    waitpid(daemon_pid, &status, 0);
    cr_assert_fail("sluiced did not exit within 10 s of SIGTERM");
    return -1;
}

static int ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int ctl(const char *fmt, ...)
{
    char args[8192], cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>&1", getenv("SLUICECTL_BIN"), args);
    const int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
