"""K models of one configuration as one: each parameter of the K members stacked on a leading
member axis, (K, *shape), in the module tree of one backbone, and the layers that apply such
stacked parameters to activations that carry the same leading axis.

A packed model trains K seeds of one trial at once (awr/train/packed.py). Member k's slice of
every parameter is exactly its own model's, so an elementwise optimiser (Adam) updates each
member as if it were alone, and `member_state(packed, k)` is a state dict that
`build_model(config).load_state_dict` takes. The module tree only holds the parameters (its
modules' own forward methods no longer fit them); the forward passes are the functions of
awr/models/packed_backbones.py, which mirror SASRec and STOSA op for op with these layers.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from awr.models.contract import Recommender


def stack_members(models: Sequence[Recommender]) -> nn.Module:
    """A copy of models[0] whose every parameter is the members' parameters stacked: (K, *shape).
    The members must share one architecture (same parameter names and shapes). The copy keeps
    its Recommender's attributes (config, trim_padding, layers) but not its contract: its
    forward passes are awr/models/packed_backbones.py's, its members load back into
    Recommenders (`member_state`)."""
    names = [name for name, _ in models[0].named_parameters()]
    for model in models[1:]:
        shapes = [(n, p.shape) for n, p in model.named_parameters()]
        if shapes != [(n, p.shape) for n, p in models[0].named_parameters()]:
            raise ValueError("packed members must have the same parameter names and shapes")
    if any(True for _ in models[0].buffers()):
        raise ValueError("packed models cannot have buffers")
    packed = copy.deepcopy(models[0])
    for name in names:
        stacked = torch.stack([model.get_parameter(name).detach() for model in models])
        _set_parameter(packed, name, stacked)
    return packed


def _set_parameter(packed: nn.Module, name: str, value: Tensor) -> None:
    path, _, attribute = name.rpartition(".")
    setattr(packed.get_submodule(path), attribute, nn.Parameter(value.contiguous()))


def member_state(packed: nn.Module, member: int) -> dict[str, Tensor]:
    """Member `member`'s parameters as a state dict of views into the packed parameters."""
    return {name: value[member] for name, value in packed.state_dict().items()}


def keep_members(packed: nn.Module, rows: Sequence[int]) -> None:
    """Keep only the members at `rows` (in that order): every parameter becomes a new leaf
    p[rows]; optimisers built on the old parameters must be rebuilt."""
    index = torch.as_tensor(list(rows), dtype=torch.long)
    for name, parameter in list(packed.named_parameters()):
        _set_parameter(packed, name, parameter.detach()[index.to(parameter.device)])


def member_norms(model: nn.Module) -> torch.Tensor:
    """Each member's sqrt(sum ||grad||^2) over the parameters that have a gradient: (K,)."""
    squares = [
        p.grad.detach().pow(2).reshape(p.shape[0], -1).sum(1)
        for p in model.parameters()
        if p.grad is not None
    ]
    if not squares:
        return torch.zeros(next(model.parameters()).shape[0])
    return torch.stack(squares).sum(0).sqrt()


def linear(layer: nn.Linear, x: Tensor) -> Tensor:
    """x (K, ..., in) -> (K, ..., out): each member's x W_k^T + b_k, one batched matmul."""
    members, width = x.shape[0], x.shape[-1]
    flat = x.reshape(members, -1, width)  # (K, M, in)
    weight = layer.weight.transpose(1, 2)  # (K, in, out)
    if layer.bias is None:
        out = torch.bmm(flat, weight)
    else:
        out = torch.baddbmm(layer.bias.unsqueeze(1), flat, weight)
    return out.view(*x.shape[:-1], out.shape[-1])


def embedding(table: nn.Embedding, ids: Tensor) -> Tensor:
    """ids (K, ...) -> rows of each member's table (K, ..., D). Padding ids read row 0 as
    nn.Embedding does, and get no gradient there (its padding_idx).

    Under autograd (eager) the table's gradient is sparse, a (K, V, D) COO tensor of the rows
    looked up, as Trainer's lookups are (awr/train/optim.py): a dense one is a zero-filled K x V
    x D table per lookup, which on Beauty's 57k items took most of a packed step. The caller
    makes it dense once per step (SparseEmbeddingGrads.densify). Compiled, the lookup is one
    dense `F.embedding` in the flattened (K * V, D) tables, whose gradient row 0 is zero because
    padded positions never reach a loss."""
    if torch.is_grad_enabled() and table.weight.requires_grad and not torch.compiler.is_compiling():
        return _SparseRows.apply(table.weight, ids)
    members, vocabulary, width = table.weight.shape
    offsets = torch.arange(members, device=ids.device) * vocabulary
    flat = ids + offsets.view(members, *([1] * (ids.dim() - 1)))
    return F.embedding(flat, table.weight.reshape(members * vocabulary, width))


class _SparseRows(torch.autograd.Function):
    """weight (K, V, D), ids (K, ...) -> weight[k, ids[k]] (K, ..., D); the gradient of
    weight is sparse: indices (member, id) of every lookup but padding, values the incoming
    gradient's rows (duplicates are summed when it is made dense)."""

    @staticmethod
    def forward(ctx: Any, weight: Tensor, ids: Tensor) -> Tensor:
        members = torch.arange(ids.shape[0], device=ids.device)
        members = members.view(-1, *([1] * (ids.dim() - 1))).expand_as(ids)
        ctx.save_for_backward(members, ids)
        ctx.shape = weight.shape
        return weight[members, ids]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        members, ids = ctx.saved_tensors
        keep = (ids != 0).reshape(-1)  # nn.Embedding's padding_idx: row 0 learns nothing
        indices = torch.stack([members.reshape(-1)[keep], ids.reshape(-1)[keep]])
        values = grad.reshape(-1, ctx.shape[-1])[keep]
        return torch.sparse_coo_tensor(indices, values, ctx.shape, check_invariants=False), None


def layer_norm(norm: nn.LayerNorm, x: Tensor) -> Tensor:
    """LayerNorm over the last axis with each member's weight and bias: x (K, ..., D)."""
    shape = (x.shape[0], *([1] * (x.dim() - 2)), x.shape[-1])
    normed = F.layer_norm(x, norm.normalized_shape, eps=norm.eps)
    return torch.addcmul(norm.bias.view(shape), normed, norm.weight.view(shape))


def broadcastable(parameter: Tensor, ndim: int) -> Tensor:
    """(K, *S) -> (K, 1, ..., 1, *S) with `ndim` axes: aligned with activations (K, ...) the way
    the unpacked parameter S aligns (from the right) with the member's activations."""
    extra = ndim - parameter.dim()
    return parameter.view(parameter.shape[0], *([1] * extra), *parameter.shape[1:])


class MemberDropout:
    """Dropout with each member's own generator: member k's mask is drawn from generators[k] as
    F.dropout draws it on CPU (bernoulli(1 - p), scaled by 1 / (1 - p)), so a member whose
    activations have its unpacked trial's shapes gets its unpacked trial's masks. `training`
    False (or p = 0) is the identity."""

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        self.generators = list(generators)
        self.training = True

    def __call__(self, x: Tensor, p: float) -> Tensor:
        if not self.training or p == 0.0:
            return x
        if len(self.generators) != x.shape[0]:
            raise ValueError(f"{len(self.generators)} generators for {x.shape[0]} members")
        noise = torch.empty_like(x)
        for member, generator in enumerate(self.generators):
            noise[member].bernoulli_(1 - p, generator=generator)
        return x * noise.div_(1 - p)


class _StackedView:
    """A refinement module as its `refine` method sees it, with its parameters replaced by
    broadcastable views of the stacked ones (everything else read from the module)."""

    def __init__(self, module: nn.Module, views: dict[str, Tensor]) -> None:
        self._module = module
        self.__dict__.update(views)

    def __getattr__(self, name: str) -> object:
        return getattr(self._module, name)


def refine(refinement: nn.Module, attn: Tensor, mask: Tensor, query_mask: Tensor) -> Tensor:
    """A refinement mechanism (awr/models/refine.py) on packed attention, all query rows:
    attn (K, B, H, l, l), mask (K, B, 1, l, l), query_mask (K, B, 1, l, 1) -> (K, B, H, l, l).
    The mechanism's own `refine` runs on its stacked parameters viewed as (K, 1, .., *S), so
    every mechanism packs without a packed copy of its formula."""
    attn = attn * query_mask
    if refinement.is_identity:
        return attn
    views = {
        name: broadcastable(value, attn.dim())
        for name, value in refinement.named_parameters(recurse=False)
    }
    view = _StackedView(refinement, views)
    rows = slice(None)
    return type(refinement).refine(view, attn, mask, rows) * query_mask  # type: ignore[arg-type]
