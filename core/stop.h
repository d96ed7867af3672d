/* The polite stop: SIGUSR1 (Slurm's --signal) and SIGTERM ask a long
 * command to finish its current step, save what resuming needs, and exit 0.
 * The handler only records the signal; the command polls. */
#ifndef TESSERA_CORE_STOP_H
#define TESSERA_CORE_STOP_H

/* Install the handler for SIGUSR1 and SIGTERM. */
void ts_stop_on_signals(void);
/* The signal that asked to stop, 0 while none has. */
int ts_stop_signal(void);

#endif
