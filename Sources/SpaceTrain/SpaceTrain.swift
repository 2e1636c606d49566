/// SpaceTrain will hold the optimizers (RMSprop, Adam), annealing schedules, the YAML config system,
/// the trainer loop, the atomic checkpointer and the TensorBoard/CSV loggers.
import SpaceCore
