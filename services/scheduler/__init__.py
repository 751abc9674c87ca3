"""The scheduler: fires cron triggers, sends delayed runs, and reports lost runs.

Any number of replicas may run; every task is safe with several at once.

Cron ticks fire exactly once. ``cron_state`` holds each cron trigger's last
fired tick; a trigger seen for the first time starts at that moment, so a
deploy never backfills. Each round, a replica locks the rows of triggers with
a due tick (``FOR UPDATE SKIP LOCKED``: rows another replica holds are left to
it), sends the run requests, waits for the broker's acknowledgement, and only
then moves ``last_tick`` and commits. A replica reading after that commit
finds nothing due. No tick is lost: until the commit, the tick is not marked
fired, and a replica that dies (or hangs past the session's idle-transaction
timeout) has its transaction rolled back and its locks released, so another
replica fires the tick. That second firing repeats the first under the same
run ids (UUIDv5 of trigger, job and tick), and run claims let each run happen
once.

Missed ticks, after all replicas were down: ``missed: skip`` fires the latest
tick only if it is at most ``OPENFN_CRON_MISFIRE_GRACE_S`` late, and drops the
rest; ``missed: run_once`` fires one run for all of them. A cron run starts from
the final state of its job's last succeeded run (its cursor), or ``{}``.

Delayed runs (retries waiting out their back-off in ``scheduled_runs``) and lost
runs (claims open past the run timeout plus a grace) follow the same pattern:
lock with ``SKIP LOCKED``, send, wait for the acknowledgement, commit.
"""
