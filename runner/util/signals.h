/*
 * SIGINT and SIGTERM for a run that must not stop between two calls: the
 * first signal is only noted (the run starts nothing new, finishes what is in
 * flight, records it and exits 128 + the signal); a second one ends the
 * process at once (the journal already covers every call sent).
 *
 * The noted signal is the one mutable global beside the logging settings: a
 * signal handler has nowhere else to put it.
 */
#ifndef OTR_UTIL_SIGNALS_H
#define OTR_UTIL_SIGNALS_H

/* Installs the handlers for SIGINT and SIGTERM. what names the work in the
 * message the first signal prints ("apply"). */
void otr_signals_graceful(const char *what);

/* The first signal received since otr_signals_graceful, or 0. */
int otr_signals_received(void);

/* The name of SIGINT / SIGTERM ("SIGTERM"), for messages. */
const char *otr_signal_name(int sig);

#endif
