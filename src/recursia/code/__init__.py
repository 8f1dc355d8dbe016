"""Recursive code refinement: TRM's recursion (task x, answer y, reasoning z, halt when a rule fires) applied to
writing programs, where the only success signal is running the code.

- `tasks`: HumanEval, MBPP and user JSONL tasks, each with visible tests (the loop may run them) and hidden
  tests (run once, at the end, for the score);
- `sandbox`: runs a candidate program and its tests in an isolated subprocess, with a structured result;
- `backends`: language models behind one interface (an OpenAI-compatible server, a local GGUF file);
- `loop`: the refinement loop, x / y / z, with composable halting rules;
- `evaluate`: benchmark runs with per-task records, an equal-budget baseline, confidence intervals, resume.
- `store`: every step of every run in one SQLite file; `tasktypes`, `estimates`: task types, trustworthy rates
  and the divergence alarm; `depth`: the maximum depth per type; `skills`: verified programs retrieved by BM25;
  `viz`, `report`: the step viewer and the page of plots (`learn_cli` holds their commands).
"""
