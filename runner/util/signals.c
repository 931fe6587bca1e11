/* Graceful SIGINT / SIGTERM (see signals.h). */
#include "util/signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t received;
static char first_message[160];
static size_t first_message_len;

static void say(const char *s, size_t len)
{
    ssize_t w = write(STDERR_FILENO, s, len);
    (void)w; /* nothing to do about a closed stderr in a signal handler */
}

static void on_signal(int sig)
{
    if (received) {
        static const char msg[] = "ota-runner: second signal: stopping now; the journal holds "
                                  "every call sent, and the next run finishes them\n";
        say(msg, sizeof(msg) - 1);
        _exit(128 + sig);
    }
    received = sig;
    say(first_message, first_message_len);
}

void otr_signals_graceful(const char *what)
{
    static const char head[] = "ota-runner: signal received: the ";
    static const char tail[] = " starts nothing new, finishes the calls in flight and records "
                               "them (send it again to stop at once)\n";
    size_t n = 0;
    memcpy(first_message + n, head, sizeof(head) - 1);
    n += sizeof(head) - 1;
    size_t wl = strlen(what);
    if (wl > sizeof(first_message) - n - sizeof(tail))
        wl = sizeof(first_message) - n - sizeof(tail);
    memcpy(first_message + n, what, wl);
    n += wl;
    memcpy(first_message + n, tail, sizeof(tail) - 1);
    n += sizeof(tail) - 1;
    first_message_len = n;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int otr_signals_received(void)
{
    return received;
}

const char *otr_signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}
