"""tinyrnn: a small, exact character-level RNN. See docs/api.md for the whole public API.

    import tinyrnn
    trainer = tinyrnn.Trainer(tinyrnn.default_corpus(), tinyrnn.TrainConfig(hidden_size=64))
    trainer.run(300)
    print(trainer.sample(200, prime="MACBETH:\\n"))
"""

from .bptt import BPTTResult, gradient_reach, last_step_bptt, manual_bptt
from .cells import Cell, get_cell
from .checkpoint import Checkpoint, checkpoint_bytes, load_checkpoint, save_checkpoint
from .config import SETTINGS, Setting, StepMetrics, TrainConfig
from .corpora import (MAX_RECALL_K, RECALL_LETTERS, corpus_names, default_corpus, load_corpus, recall_corpus,
                      recall_lines, recall_positions)
from .errors import (CheckpointError, ConfigError, SaveError, TextError, TinyRNNError, TrainingDiverged,
                     UnknownCharacterError)
from .explain import TopNext, connectivity, gate_trace, next_probabilities, top_next, tracking_units
from .gradcheck import GradCheckReport, gradient_check, relative_error
from .model import (CELLS, ENGINES, NATS_TO_BITS, PARAM_NAMES, LossAndGrads, ModelConfig, evaluate_loss, forward,
                    forward_with_state, init_hidden, init_params, loss, loss_and_grads)
from .optim import (OPTIMIZERS, SGD, Adagrad, Adam, clip_by_global_norm, clip_by_value, global_norm,
                    make_optimizer)
from .probes import UnitMatch, read_passage, recall_accuracy, text_features, unit_correlations
from .race import CellsRace, LossPoint, RaceResult, verdict
from .sampling import sample
from .engines import EngineChoice
from .engines.wasm_module import BACKEND
from .engines.workers import MAX_WORKERS, ShardError, Workers, start as start_workers, workers
from .trainer import Trainer, is_diverging
from .vocab import Vocabulary, check_text, read_text_file, text_problem

__version__ = "0.1.0"

__all__ = [
    "BACKEND", "is_diverging", "CELLS", "Cell", "get_cell", "forward_with_state", "SETTINGS", "Setting", "check_text", "text_problem", "BPTTResult", "Checkpoint", "CheckpointError", "ConfigError", "ENGINES", "GradCheckReport", "LossAndGrads",
    "ModelConfig", "NATS_TO_BITS", "OPTIMIZERS", "PARAM_NAMES", "SGD", "Adagrad", "Adam", "StepMetrics", "TextError",
    "TinyRNNError", "TrainConfig", "Trainer", "TrainingDiverged", "UnknownCharacterError", "Vocabulary",
    "checkpoint_bytes", "clip_by_global_norm", "clip_by_value", "corpus_names", "default_corpus",
    "evaluate_loss", "forward", "global_norm", "gradient_check", "init_hidden", "init_params", "load_checkpoint",
    "load_corpus", "loss", "loss_and_grads", "make_optimizer", "manual_bptt", "read_text_file", "relative_error",
    "sample", "save_checkpoint", "recall_corpus", "recall_positions", "recall_lines", "MAX_RECALL_K", "RECALL_LETTERS", "UnitMatch", "read_passage", "recall_accuracy",
    "text_features", "unit_correlations", "SaveError", "ShardError", "start_workers", "workers", "Workers", "MAX_WORKERS",
    "EngineChoice",
    "gradient_reach", "last_step_bptt", "TopNext", "connectivity", "gate_trace", "next_probabilities", "top_next",
    "tracking_units", "CellsRace", "LossPoint", "RaceResult", "verdict",
]
