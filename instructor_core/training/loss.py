"""InfoNCE over cosine similarities, with in-batch and hard negatives.

For query ``i`` the candidates are every positive in the batch and every hard negative in the batch
(its own and the other rows'); the target is its own positive::

    loss_q = mean_i  -log( exp(cos(q_i, p_i) / t) / sum_c exp(cos(q_i, c) / t) )

With ``symmetric=True`` the positive -> query term (positive ``i`` against every query of the
batch, target query ``i``) is added, as INSTRUCTOR's training code optionally does; the loss is then
the mean of the two terms, so its scale matches the one-way loss.

Temperature: the default 0.05 is the scale (1 / 0.05 = 20) that all-MiniLM-L6-v2 and most
sentence-transformers checkpoints were trained with (MultipleNegativesRankingLoss, scale 20), so a
short refit of such a model keeps the similarity spread it already has. The INSTRUCTOR paper
trained GTR with 0.01; pass ``temperature=0.01`` for that recipe.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from instructor_core.errors import InputError

__all__ = ["InfoNCELoss"]


class InfoNCELoss(torch.nn.Module):
    """Contrastive loss over cosine similarities divided by a temperature.

    Args:
        temperature: Divides the cosine similarities; lower is sharper. Default 0.05.
        symmetric: Also score each positive against all queries (positive -> query term).
    """

    def __init__(self, temperature: float = 0.05, symmetric: bool = False) -> None:
        super().__init__()
        if not temperature > 0:
            raise InputError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.symmetric = bool(symmetric)

    def forward(
        self, queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The mean loss over the batch.

        Args:
            queries: ``(batch, dim)`` query embeddings.
            positives: ``(batch, dim)``; row ``i`` is the positive of query ``i``.
            negatives: ``(m, dim)`` every hard negative of the batch, any number; or None.
        """
        if queries.shape != positives.shape:
            raise InputError(f"queries {tuple(queries.shape)} and positives {tuple(positives.shape)} differ")
        q = F.normalize(queries.float(), dim=-1)
        p = F.normalize(positives.float(), dim=-1)
        candidates = p
        if negatives is not None and negatives.shape[0]:
            candidates = torch.cat([p, F.normalize(negatives.float(), dim=-1)])
        labels = torch.arange(q.shape[0], device=q.device)
        loss = F.cross_entropy(q @ candidates.T / self.temperature, labels)
        if self.symmetric:
            loss = (loss + F.cross_entropy(p @ q.T / self.temperature, labels)) / 2
        return loss

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, symmetric={self.symmetric}"
