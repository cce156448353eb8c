"""greenlab.zoo: trained once, cached, rebuilt when damaged; tiny recipes only (the real one takes
seconds to minutes and is exercised by the lessons)."""

import shutil
import subprocess
import sys
from dataclasses import replace as dataclasses_replace

import pytest
import torch

from greenlab import data, zoo

TINY = zoo.Recipe(channels=4, phases=(zoo.Phase(3, 1e-2, 0), zoo.Phase(2, 1e-3, 1)), threads=1)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder holding only the MNIST-1D arrays (copied: generating them costs s)."""
    data.load("mnist1d")
    for f in data.cache_dir().glob("mnist1d-*.npz"):
        shutil.copy(f, tmp_path)
    monkeypatch.setenv("GREENLAB_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture
def trainings(monkeypatch):
    """How many times the zoo trained from scratch."""
    calls = []
    real = zoo._train

    def counting(name, recipe):
        calls.append(name)
        return real(name, recipe)

    monkeypatch.setattr(zoo, "_train", counting)
    return calls


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cache_hit_returns_identical_weights_without_training(cache, trainings):
    first = zoo.load("cnn128", recipe=TINY)
    assert trainings == ["cnn128"] and zoo.cache_path("cnn128", TINY).exists()
    second = zoo.load("cnn128", recipe=TINY)
    assert trainings == ["cnn128"]  # read from the cache
    assert same(weights(first), weights(second))
    assert not second.training and first.conv1.weight.shape == (4, 1, 5)


def test_each_call_returns_a_fresh_copy(cache):
    a = zoo.load("cnn128", recipe=TINY)
    kept = weights(a)
    with torch.no_grad():
        a.conv1.weight.zero_()
    assert same(weights(zoo.load("cnn128", recipe=TINY)), kept)


@pytest.mark.parametrize("damage", [b"", b"not a zip", "truncate"])
def test_damaged_cache_is_rebuilt(cache, trainings, damage):
    good = weights(zoo.load("cnn128", recipe=TINY))
    path = zoo.cache_path("cnn128", TINY)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if damage == "truncate" else damage)
    assert same(weights(zoo.load("cnn128", recipe=TINY)), good)  # same recipe, same weights
    assert len(trainings) == 2
    zoo.load("cnn128", recipe=TINY)
    assert len(trainings) == 2  # the rebuilt file is whole again


def test_a_file_that_is_not_what_its_key_names_is_rebuilt(cache, trainings):
    other = zoo.Recipe(channels=4, phases=(zoo.Phase(2, 1e-2, 5),), threads=1)
    zoo.load("cnn128", recipe=other)
    shutil.copy(zoo.cache_path("cnn128", other), zoo.cache_path("cnn128", TINY))  # wrong contents
    model = zoo.load("cnn128", recipe=TINY)
    assert len(trainings) == 2
    assert not same(weights(model), weights(zoo.load("cnn128", recipe=other)))
    assert zoo.card("cnn128", recipe=TINY).recipe["phases"][0]["steps"] == 3


def test_non_finite_weights_in_the_cache_are_rebuilt(cache, trainings):
    good = weights(zoo.load("cnn128", recipe=TINY))
    path = zoo.cache_path("cnn128", TINY)
    entry = torch.load(path, weights_only=True)
    entry["state_dict"]["conv1.weight"][0, 0, 0] = float("nan")
    torch.save(entry, path)
    assert same(weights(zoo.load("cnn128", recipe=TINY)), good) and len(trainings) == 2


def test_key_includes_recipe_and_torch_version(cache, monkeypatch):
    base = zoo.cache_path("cnn128", TINY)
    assert zoo.cache_path("cnn128", TINY) == base and base.parent == cache
    assert zoo.cache_path("cnn128", zoo.Recipe(channels=5, threads=1)) != base
    assert zoo.cache_path("cnn128", zoo.Recipe(channels=4, phases=TINY.phases, threads=2)) != base
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert zoo.cache_path("cnn128", TINY) != base


def test_a_recipe_without_hidden_keeps_the_key_it_had_before_the_field():
    # the key as it was computed before Recipe had a ``hidden`` field: cnn128's cache stays valid
    import dataclasses
    import hashlib
    import json

    recipe = zoo.RECIPES["cnn128"]
    fields = {f.name: getattr(recipe, f.name) for f in dataclasses.fields(recipe)
              if f.name != "hidden"}
    old = {"format": zoo.FORMAT, "name": "cnn128", "torch": str(torch.__version__),
           "recipe": {**fields, "phases": [dataclasses.asdict(p) for p in recipe.phases]}}
    key = hashlib.sha1(json.dumps(old, sort_keys=True).encode()).hexdigest()[:12]
    assert zoo.cache_path("cnn128").name == f"zoo-cnn128-{key}.pt"
    assert "hidden" not in recipe.as_dict()


def test_hidden_builds_the_hidden_layer_and_is_in_the_key(cache):
    wide = dataclasses_replace(TINY, hidden=6)
    assert zoo.cache_path("cnn128", wide) != zoo.cache_path("cnn128", TINY)
    assert zoo.Recipe(hidden=6).as_dict()["hidden"] == 6
    model = zoo.load("cnn32-h256", recipe=wide)
    assert model.fc.weight.shape[0] == 6 and zoo.card("cnn32-h256", recipe=wide).recipe["hidden"] == 6


def test_card_records_recipe_scores_and_training_bill(cache):
    c = zoo.card("cnn128", recipe=TINY)
    model = zoo.load("cnn128", recipe=TINY)
    d = data.load("mnist1d")
    from greenlab.train import evaluate

    assert c.accuracy == pytest.approx(evaluate(model, d.x_test, d.y_test)["accuracy"])
    assert c.recipe["channels"] == 4 and c.params == sum(p.numel() for p in model.parameters())
    assert c.train_time_s > 0 and c.energy_kind in ("measured", "estimated", "mixed")
    assert c.torch_version == str(torch.__version__) and c.path == zoo.cache_path("cnn128", TINY)


def test_rng_and_threads_are_the_same_after_a_hit_as_after_training(cache):
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    zoo.load("cnn128", recipe=TINY)  # trains
    after_training = torch.rand(3)
    torch.manual_seed(123)
    zoo.load("cnn128", recipe=TINY)  # cache hit
    assert torch.equal(torch.rand(3), after_training)
    assert torch.get_num_threads() == threads


def test_default_recipe_is_lesson_02s():
    r = zoo.RECIPES["cnn128"]
    assert (r.channels, r.init_seed, r.batch_size, r.max_shift, r.threads) == (128, 0, 128, 3, 2)
    assert r.phases == (zoo.Phase(1000, 0.01, 0), zoo.Phase(500, 0.001, 1))


def test_lesson_05s_recipe():
    r = zoo.RECIPES["cnn32-h256"]
    assert (r.channels, r.hidden, r.init_seed, r.batch_size, r.max_shift, r.threads) == \
        (32, 256, 0, 128, 3, 1)
    assert r.phases == (zoo.Phase(3000, 0.01, 0), zoo.Phase(500, 0.001, 1))


def test_wrong_names_and_recipes():
    with pytest.raises(ValueError, match=r"name must be one of \('cnn128', 'cnn32-h256'\), got 'resnet'"):
        zoo.load("resnet")
    with pytest.raises(TypeError, match="name must be a string, got int"):
        zoo.load(128)
    with pytest.raises(TypeError, match="recipe must be a greenlab.zoo.Recipe, got dict"):
        zoo.load("cnn128", recipe={"channels": 4})
    with pytest.raises(ValueError, match="channels must be a positive int"):
        zoo.Recipe(channels=0)
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        zoo.Recipe(hidden=0)
    with pytest.raises(ValueError, match="phases must hold at least one Phase"):
        zoo.Recipe(phases=())
    with pytest.raises(TypeError, match="phases must be a tuple of Phase"):
        zoo.Recipe(phases=[zoo.Phase(1, 0.1, 0)])
    with pytest.raises(TypeError, match="lr must be a number, got str"):
        zoo.Phase(10, "0.1", 0)
    with pytest.raises(ValueError, match=r"lr must be in \(0, 1000\), got -1"):
        zoo.Phase(10, -1, 0)
    with pytest.raises(ValueError, match="dataset must be 'mnist1d'"):
        zoo.Recipe(dataset="digits")
    assert zoo.Phase(10, 1, 0) == zoo.Phase(10, 1.0, 0)  # one recipe, one cache key


def test_importing_the_zoo_imports_no_torch():
    code = "import sys, greenlab.zoo; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
