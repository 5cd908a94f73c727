"""Interruption augmentations (ReMind Sec. 3.1, Appendix F.2; HM-World exit/re-entry): degraded clips and frame
graphs with exact ground truth. One module per family; ``api`` chooses, checks and applies them."""
from tasks.augment.api import FALLBACKS, KINDS, Augmented, applicable, augment, choose_kind
from tasks.augment.common import NotApplicable

__all__ = ["FALLBACKS", "KINDS", "Augmented", "NotApplicable", "applicable", "augment", "choose_kind"]
