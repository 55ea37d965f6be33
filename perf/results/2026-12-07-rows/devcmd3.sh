# Call 3 never ran in the ninth session (no machine could be started). In the tenth session the
# call already queued on this path runs the tenth session's first script instead, which also
# times this call's ResNet-50 INT8 step (the 4/8-row rule); the BERT --tune step is left out.
exec bash perf/results/2026-12-07-io/devcmd1.sh
