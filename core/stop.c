#include "core/stop.h"

#include <signal.h>

static volatile sig_atomic_t g_stop_signal = 0;

static void on_signal(int sig) { g_stop_signal = sig; }

void ts_stop_on_signals(void) {
    signal(SIGUSR1, on_signal);
    signal(SIGTERM, on_signal);
}

int ts_stop_signal(void) { return (int)g_stop_signal; }
