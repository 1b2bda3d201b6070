import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from medusa_engine.heads import (DRAFT_FILE, HEADS_FILE, STORAGE_DTYPE, HeadsConfig, HeadsError, MedusaHeads,
                                 load_heads, save_heads, untrained_heads)
from medusa_engine.tree import TreeSpec

D, V = 16, 50


def _ref_state(k=5, per_head=True):
    torch.manual_seed(0)
    sd = {}
    for i in range(k):
        sd[f"{i}.0.linear.weight"] = torch.randn(D, D)
        sd[f"{i}.0.linear.bias"] = torch.randn(D)
        if per_head:
            sd[f"{i}.1.weight"] = torch.randn(V, D)
    return sd


def test_untrained_heads_predict_what_the_base_predicts():
    heads = untrained_heads(3, D, V)
    lm = torch.nn.Linear(D, V, bias=False)
    h = torch.randn(2, D)
    out = heads(h, lm)
    assert out.shape == (3, 2, V)
    for k in range(3):
        torch.testing.assert_close(out[k], lm(h))
    assert heads.blocks[0] is not heads.blocks[1]  # no `[Module()] * n` aliasing


def test_reference_medusa1_pt_with_understated_config(tmp_path):
    sd = _ref_state(5, per_head=True)
    torch.save(sd, tmp_path / "medusa_lm_head.pt")
    (tmp_path / "config.json").write_text(json.dumps({"medusa_num_heads": 2, "medusa_num_layers": 1,
                                                      "base_model_name_or_path": "x"}))
    heads = load_heads(tmp_path, D, V)
    assert heads.num_heads == 5 and heads.config.lm_head == "per_head"
    torch.testing.assert_close(heads.lm_heads[4].weight, sd["4.1.weight"])
    torch.testing.assert_close(heads.blocks[2][0].linear.bias, sd["2.0.linear.bias"])


def test_version2_safetensors_shared_lm_head(tmp_path):
    sd = _ref_state(3, per_head=False)
    save_file(sd, str(tmp_path / "medusa_lm_head.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"medusa_num_heads": 3, "version": "2"}))
    heads = load_heads(tmp_path, D, V)
    assert heads.num_heads == 3 and heads.config.lm_head == "shared" and heads.lm_heads is None
    torch.testing.assert_close(heads.blocks[1][0].linear.weight, sd["1.0.linear.weight"])


def test_full_medusa2_checkpoint(tmp_path):
    sd = {f"medusa_head.{k}": v for k, v in _ref_state(4, per_head=True).items()}
    sd["model.embed_tokens.weight"] = torch.randn(V, D)
    save_file(sd, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "medusa_num_heads": 4}))
    heads = load_heads(tmp_path, D, V)
    assert heads.num_heads == 4 and heads.config.lm_head == "per_head"


def _as_stored(heads: MedusaHeads) -> MedusaHeads:
    """`heads` with every weight rounded to the precision it is saved in."""
    with torch.no_grad():
        for p in heads.parameters():
            p.copy_(p.to(STORAGE_DTYPE))
    return heads


def test_save_roundtrip_all_designs(tmp_path):
    for mode, rank in (("shared", 0), ("per_head", 0), ("lowrank", 4)):
        heads = MedusaHeads(HeadsConfig(num_heads=2, hidden_size=D, vocab_size=V, lm_head=mode, rank=rank))
        with torch.no_grad():
            for p in heads.parameters():
                p.normal_()
        out = save_heads(heads, tmp_path / mode)
        assert {v.dtype for v in load_file(str(out / HEADS_FILE)).values()} == {STORAGE_DTYPE}
        loaded = load_heads(out, D, V)
        assert loaded.config == heads.config
        assert all(p.dtype == torch.float32 for p in loaded.parameters())
        lm = torch.nn.Linear(D, V, bias=False)
        h = torch.randn(3, D)
        torch.testing.assert_close(loaded(h, lm), _as_stored(heads)(h, lm))


def test_pickle_carrying_code_is_refused(tmp_path):
    marker = tmp_path / "code_ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # creates `marker` if the pickle is executed

    with open(tmp_path / "medusa_lm_head.pt", "wb") as f:
        pickle.dump({"0.0.linear.weight": Evil()}, f, protocol=2)
    with pytest.raises(HeadsError, match="refused"):
        load_heads(tmp_path, D, V)
    assert not marker.exists()


@pytest.mark.parametrize("hidden,vocab,match", [(D + 1, V, "hidden size"), (D, V + 1, "vocabulary")])
def test_heads_for_another_model(tmp_path, hidden, vocab, match):
    torch.save(_ref_state(2, per_head=True), tmp_path / "medusa_lm_head.pt")
    with pytest.raises(HeadsError, match=match):
        load_heads(tmp_path, hidden, vocab)


def test_count_mismatch_and_missing_heads(tmp_path):
    torch.save(_ref_state(2, per_head=True), tmp_path / "medusa_lm_head.pt")
    with pytest.raises(HeadsError, match="2 heads, 3 were asked"):
        load_heads(tmp_path, D, V, num_heads=3)
    (tmp_path / "config.json").write_text(json.dumps({"medusa_num_heads": 4}))
    with pytest.raises(HeadsError, match="promises 4"):
        load_heads(tmp_path, D, V)


def test_incomplete_head_is_an_error(tmp_path):
    sd = _ref_state(2, per_head=True)
    del sd["1.0.linear.bias"]
    torch.save(sd, tmp_path / "medusa_lm_head.pt")
    with pytest.raises(HeadsError, match="missing"):
        load_heads(tmp_path, D, V)


def test_corrupt_and_truncated_and_missing(tmp_path):
    save_file(_ref_state(2, per_head=False), str(tmp_path / "medusa_lm_head.safetensors"))
    data = (tmp_path / "medusa_lm_head.safetensors").read_bytes()
    (tmp_path / "medusa_lm_head.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(HeadsError, match="corrupt or truncated"):
        load_heads(tmp_path, D, V)
    (tmp_path / "medusa_lm_head.safetensors").write_bytes(b"garbage")
    with pytest.raises(HeadsError, match="corrupt or truncated"):
        load_heads(tmp_path, D, V)
    with pytest.raises(HeadsError, match="not found"):
        load_heads(tmp_path / "nope", D, V)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HeadsError, match="no Medusa heads"):
        load_heads(empty, D, V)


def test_config_validation():
    with pytest.raises(HeadsError):
        HeadsConfig(num_heads=0, hidden_size=D, vocab_size=V)
    with pytest.raises(HeadsError):
        HeadsConfig(num_heads=1, hidden_size=D, vocab_size=V, lm_head="lowrank")
    with pytest.raises(HeadsError):
        HeadsConfig(num_heads=1, hidden_size=D, vocab_size=V, lm_head="weird")


def _shared_heads(draft=None):
    torch.manual_seed(1)
    heads = MedusaHeads(HeadsConfig(num_heads=3, hidden_size=D, vocab_size=V))
    with torch.no_grad():
        for p in heads.parameters():
            p.normal_(0, 0.3)
    return heads.eval().set_draft_vocab(draft)


def test_draft_vocabulary_proposes_the_full_top_k_restricted_to_it():
    draft = torch.tensor([3, 7, 11, 20, 21, 30, 44, 49])
    heads, lm, h = _shared_heads(draft), torch.nn.Linear(D, V, bias=False), torch.randn(D)
    probs, tokens = heads.propose(h, lm, 4)  # (K, 4) each
    full = heads(h[None], lm)[:, 0]  # (K, V)
    restricted = torch.softmax(full[:, draft], dim=-1)
    want_probs, want_idx = restricted.topk(4)
    assert torch.equal(tokens, draft[want_idx])
    torch.testing.assert_close(probs, want_probs)
    assert torch.equal(heads.top_tokens(heads.hidden(h[None]), lm.weight, 4)[:, 0], tokens)
    none_probs, none_tokens = _shared_heads(None).propose(h, lm, 4)
    assert torch.equal(none_tokens, full.topk(4).indices)  # without a draft vocabulary: all of it
    torch.testing.assert_close(none_probs, torch.softmax(full, -1).topk(4).values)


def test_draft_projection_follows_weight_changes_and_packing():
    from medusa_engine.cpu_linear import can_pack, is_packed, pack_linears

    heads, lm, h = _shared_heads(torch.arange(0, V, 3)), torch.nn.Linear(D, V, bias=False), torch.randn(D)
    before = heads.propose(h, lm, 3)[1]
    with torch.no_grad():
        lm.weight.mul_(-1)  # a changed lm_head (e.g. a merged delta): the cached rows must not be reused
    after = heads.propose(h, lm, 3)[1]
    assert not torch.equal(before, after)
    assert torch.equal(after, heads.top_tokens(heads.hidden(h[None]), lm.weight, 3)[:, 0])
    if can_pack(lm):
        pack_linears(lm)
        with torch.inference_mode():  # as decoding calls it
            assert torch.equal(heads.propose(h, lm, 3)[1], after) and is_packed(heads._decoding_linears["draft"][1])


def _unpacked_then_packed(lm):
    """Yields False, then packs `lm` for the row kernel and yields True (where this machine can pack)."""
    from medusa_engine.cpu_linear import can_pack, pack_linears

    yield False
    if can_pack(lm):
        pack_linears(lm)
        yield True


@pytest.mark.parametrize("layers", [1, 2])
def test_propose_runs_the_blocks_as_one_product_and_follows_weight_changes(layers):
    from medusa_engine.cpu_linear import is_packed

    torch.manual_seed(2)
    heads = MedusaHeads(HeadsConfig(num_heads=3, hidden_size=D, vocab_size=V, num_layers=layers))
    with torch.no_grad():
        for p in heads.parameters():
            p.normal_(0, 0.3)
    lm, h = torch.nn.Linear(D, V, bias=False), torch.randn(D)

    def expected():  # block by block, as training runs them
        return torch.softmax(heads(h[None], lm)[:, 0], dim=-1).topk(4)

    for packed in _unpacked_then_packed(lm):
        with torch.inference_mode():  # as decoding calls it
            probs, tokens = heads.propose(h, lm, 4)
            want = expected()
            assert torch.equal(tokens, want.indices)
            torch.testing.assert_close(probs, want.values)
        assert ("blocks" in heads._decoding_linears) == (layers == 1)
        if layers == 1:
            assert is_packed(heads._decoding_linears["blocks"][1]) == packed
        for param in ("weight", "bias"):  # an optimiser step: the stacked copy must follow either
            with torch.no_grad():
                getattr(heads.blocks[1][0].linear, param).mul_(-3)
            with torch.inference_mode():
                assert torch.equal(heads.propose(h, lm, 4)[1], expected().indices)


def test_draft_vocabulary_save_load_and_removal(tmp_path):
    draft = torch.tensor([4, 8, 15, 16, 23, 42])
    save_heads(_shared_heads(draft), tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["draft_vocab"] == 6
    loaded = load_heads(tmp_path, D, V)
    assert torch.equal(loaded.draft_ids, draft) and loaded.config.draft_vocab == 6
    assert "draft_ids" not in loaded.state_dict()  # the weights file keeps the reference layout
    save_heads(_shared_heads(None), tmp_path)  # saving a set without one removes the stale file
    assert not (tmp_path / DRAFT_FILE).exists() and load_heads(tmp_path, D, V).draft_ids is None


def test_bad_draft_vocabularies(tmp_path):
    heads = _shared_heads()
    for ids, match in ((torch.tensor([], dtype=torch.long), "needs 1 to"), (torch.tensor([1, V]), "needs 1 to"),
                       (torch.tensor([-1, 2]), "needs 1 to"), (torch.tensor([1, 2, 1]), "repeats")):
        with pytest.raises(HeadsError, match=match):
            heads.set_draft_vocab(ids)
    save_heads(_shared_heads(torch.tensor([1, 2, 3])), tmp_path)
    (tmp_path / DRAFT_FILE).write_bytes(b"garbage")
    with pytest.raises(HeadsError, match="draft vocabulary .* corrupt or truncated"):
        load_heads(tmp_path, D, V)
    (tmp_path / DRAFT_FILE).unlink()
    with pytest.raises(HeadsError, match="states a draft vocabulary of 3 ids but .* is missing"):
        load_heads(tmp_path, D, V)
    save_file({"ids": torch.tensor([1, 2])}, str(tmp_path / DRAFT_FILE))
    with pytest.raises(HeadsError, match="states a draft vocabulary of 3 ids, .* holds 2"):
        load_heads(tmp_path, D, V)
    with pytest.raises(HeadsError, match="draft_vocab must be"):
        HeadsConfig(num_heads=1, hidden_size=D, vocab_size=V, draft_vocab=V + 1)
    with pytest.raises(HeadsError, match="give its ids to set_draft_vocab"):
        MedusaHeads(HeadsConfig(num_heads=1, hidden_size=D, vocab_size=V, draft_vocab=3))


def _token_heads(layers=1, draft=None):
    torch.manual_seed(3)
    heads = MedusaHeads(HeadsConfig(num_heads=3, hidden_size=D, vocab_size=V, num_layers=layers, token_input=True))
    with torch.no_grad():
        for p in heads.parameters():
            p.normal_(0, 0.3)
    return heads.eval().set_draft_vocab(draft)


TREE = TreeSpec.from_paths([[0], [1], [0, 0], [0, 1], [1, 0], [0, 0, 0]]).buffers(top_k=4)


@torch.no_grad()
def _nodes_by_hand(heads, h, root, lm, embed):
    """Each node's token and head probability, head by head through `hidden` (the training path): head j
    reads the token of the node it expands (the root for head 1)."""
    tokens, probs = [int(root)], [0.0]
    for path, parent in zip(TREE.spec.paths, TREE.spec.parents[1:]):
        j = len(path) - 1
        prev = torch.full((1, heads.num_heads), tokens[parent])  # only head j's column is read
        z = heads.hidden(h[None], heads.previous_embeddings(prev, embed.weight))[j : j + 1]  # (1, 1, d)
        p, i = torch.softmax(heads.logits_over(z, lm.weight, heads.draft_ids, first=j)[0, 0], -1).topk(4)
        i = i if heads.draft_ids is None else heads.draft_ids[i]
        tokens.append(int(i[path[-1]]))
        probs.append(float(p[path[-1]]))
    return tokens, probs


def _nodes_proposed(heads, h, root, lm, embed):
    with torch.inference_mode():  # as decoding calls it
        probs, ids = heads.propose_tree(h, lm, TREE, root, embed)
    index, _ = heads.proposal_layout(TREE)
    return (torch.cat([root[None], ids.flatten()])[index].tolist(),
            torch.cat([probs.new_zeros(1), probs.flatten()])[index].tolist())


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("draft", [None, torch.arange(1, V, 2)])
def test_token_input_heads_guess_each_nodes_children_after_that_node(layers, draft):
    heads, lm, embed = _token_heads(layers, draft), torch.nn.Linear(D, V, bias=False), torch.nn.Embedding(V, D)
    h, root = torch.randn(D), torch.tensor(7)
    for _ in _unpacked_then_packed(lm):
        tokens, probs = _nodes_proposed(heads, h, root, lm, embed)
        want_tokens, want_probs = _nodes_by_hand(heads, h, root, lm, embed)
        assert tokens == want_tokens
        assert probs == pytest.approx(want_probs, abs=1e-5)
        with torch.no_grad():  # an optimiser step on a token projection: the decoding copy must follow
            heads.tokens[1].weight.mul_(-2)
        assert _nodes_proposed(heads, h, root, lm, embed)[0] == _nodes_by_hand(heads, h, root, lm, embed)[0]
    trees = [_nodes_proposed(heads, h, torch.tensor(r), lm, embed)[0] for r in range(V)]
    assert len({tuple(t[1:3]) for t in trees}) > 1  # head 1 reads the root: another root, other guesses
    assert any(t[3] != t[5] for t in trees)  # nodes [0, 0] and [1, 0]: head 2's first guess after other tokens
    _, rows = heads.proposal_layout(TREE)
    assert rows.tolist() == [0, 1, 3]  # the rows a trace shows: each head after the top-1 chain's node
    with pytest.raises(HeadsError, match="propose_tree"):
        heads.propose(h, lm, 4)
    with pytest.raises(HeadsError, match="previous tokens' embeddings"):
        heads.hidden(h[None])


def test_heads_without_token_input_propose_one_row_per_head_the_tree_reads():
    heads, lm, h = _shared_heads(), torch.nn.Linear(D, V, bias=False), torch.randn(D)
    probs, ids = heads.propose_tree(h, lm, TREE, torch.tensor(7), None)
    assert torch.equal(ids, heads.propose(h, lm, 4)[1][:3]) and probs.shape == (3, 4)  # tree depth 3 of 3 heads
    index, rows = heads.proposal_layout(TREE)
    assert torch.equal(index, TREE.flat_index) and rows.tolist() == [0, 1, 2]
    for depth in (0, 1, 2):
        assert torch.equal(heads.propose(h, lm, 4, depth)[1], heads.propose(h, lm, 4)[1][:depth])


def test_token_inputs_added_to_trained_heads_change_nothing_until_trained():
    from medusa_engine.heads import with_token_input

    plain = _shared_heads(torch.arange(0, V, 2))
    heads, lm, embed, h = with_token_input(plain), torch.nn.Linear(D, V, bias=False), torch.nn.Embedding(V, D), torch.randn(D)
    assert heads.config.token_input and heads.config.draft_vocab == plain.config.draft_vocab
    for root in (0, 9, 31):
        got, want = _nodes_proposed(heads, h, torch.tensor(root), lm, embed), _nodes_proposed(plain, h, torch.tensor(root), lm, embed)
        assert got[0] == want[0] and got[1] == pytest.approx(want[1])
    assert with_token_input(heads) is heads


def test_token_input_heads_save_and_load(tmp_path):
    heads = _token_heads(draft=torch.arange(0, V, 3))
    loaded = load_heads(save_heads(heads, tmp_path / "t"), D, V)
    assert loaded.config == heads.config and loaded.config.token_input
    assert json.loads((tmp_path / "t" / "config.json").read_text())["token_input"] is True
    lm, embed, h = torch.nn.Linear(D, V, bias=False), torch.nn.Embedding(V, D), torch.randn(D)
    assert _nodes_proposed(loaded, h, torch.tensor(5), lm, embed) == _nodes_proposed(_as_stored(heads), h, torch.tensor(5), lm, embed)
    plain = load_heads(save_heads(_shared_heads(), tmp_path / "p"), D, V)
    assert not plain.config.token_input and plain.tokens is None
    with pytest.raises(HeadsError, match="token_input"):
        HeadsConfig(num_heads=1, hidden_size=D, vocab_size=V, token_input="yes")
