"""Cost-optimal grouped-query attention: a reproducible companion to Chen et al., EMNLP 2025.

The modules fall in layers; each imports only from its own layer and the ones above it
(tests/test_layers.py reads every import, function-level ones included):

  method        units, values, shapes, cost, architecture, hardware, scaling, search, regimes, study_limits,
                head_law, optimum_words, fits_words: the paper's cost model, fits and three-step search, and the
                sentences chapters state about them; numbers in, numbers out, no torch, no files
  paper, data   paper, digitise, figure1, fig2, fig2_words, readings, readings_words, sources (the paper's tables,
                their checks and the sentences chapters 1 and 6 state about them); paths,
                config (training and sweep settings), profiles, data (corpora), runs (run stores), study, pilot,
                hf_config, exercises; no torch
  ML stack      attention, cpu_decode, model, train, sweep, machine: models, backends, training and the
                machine they run on
  measurement   profiling, checks, benchmarks, real_models, gpu_check: the ML stack run against the cost model;
                attention_words: what chapter 2 says of those measurements
  cli           `gqa`, one module per command

The book's machinery is a separate package, `gqa_book` (booktools/ of a checkout); nothing here imports it.
Importing `gqa` is cheap (no torch); modules that need torch import it themselves.
"""

__version__ = "0.1.0"
