/// SpaceEval will hold the metrics of the reference's eval/ap.py (AP over IoU thresholds, counting
/// errors), the evaluator and the visualisations (`space show`).
import SpaceCore
