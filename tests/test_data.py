"""cnnviz.data: both dataset layouts, written here in tmp_path, and channel statistics."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from cnnviz import data as D
from cnnviz import images as I

# class name -> the solid colour its pictures have; written unsorted on purpose
COLOURS = {"zebra": (250, 20, 20), "apple": (20, 250, 20), "mango": (20, 20, 250)}


def make_image_folder(root, per_class=(3, 2)):
    """ROOT/train/<class>/*.png and ROOT/test/<class>/*.jpg, one 64x48 picture among them, plus stray files."""
    for split, ext, n in (("train", "png", per_class[0]), ("test", "jpg", per_class[1])):
        for name, colour in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                size = (64, 48) if i == 0 and split == "train" else (32, 32)  # (w, h)
                Image.new("RGB", size, colour).save(folder / f"{i:03d}.{ext}")
            (folder / "notes.txt").write_text("not a picture")
        (root / split / "README.txt").write_text("a file, not a class folder")
    return root


def test_image_folder_reader(tmp_path):
    root = make_image_folder(tmp_path / "shapes")
    train = D.load_image_folder(root, "train")
    assert train.classes == ["apple", "mango", "zebra"]
    assert train.images.shape == (9, 32, 32, 3) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and len(train) == 9
    np.testing.assert_array_equal(train.labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    for img, label in zip(train.images, train.labels, strict=True):
        want = COLOURS[train.classes[label]]
        np.testing.assert_array_equal(img, np.broadcast_to(want, (32, 32, 3)))  # PNG is lossless

    test = D.load_image_folder(root, "test")
    assert test.classes == train.classes
    assert test.images.shape == (6, 32, 32, 3)
    for img, label in zip(test.images, test.labels, strict=True):  # JPEG: close, not exact
        want = np.array(COLOURS[test.classes[label]])
        assert np.abs(img.reshape(-1, 3).mean(0) - want).max() < 8


def test_image_folder_resizes_other_sizes(tmp_path):
    root = tmp_path / "d"
    (root / "train" / "a").mkdir(parents=True)
    y, x = np.mgrid[0:48, 0:64]
    grad = np.stack([x * 4, y * 5, np.full_like(x, 7)], -1).astype(np.uint8)  # (48, 64, 3)
    Image.fromarray(grad).save(root / "train" / "a" / "wide.png")
    ds = D.load_image_folder(root, "train", size=(16, 16))
    assert ds.images.shape == (1, 16, 16, 3)
    assert np.all(ds.images[..., 2] == 7)
    assert ds.images[0, 0, 0, 0] < ds.images[0, 0, -1, 0]  # still brighter to the right
    assert ds.images[0, 0, 0, 1] < ds.images[0, -1, 0, 1]  # and further down


def test_image_folder_errors(tmp_path):
    with pytest.raises(D.DatasetError):
        D.load_image_folder(tmp_path, "train")
    (tmp_path / "train").mkdir()
    with pytest.raises(D.DatasetError, match="class folders"):
        D.load_image_folder(tmp_path, "train")
    (tmp_path / "train" / "a").mkdir()
    (tmp_path / "train" / "a" / "x.txt").write_text("hi")
    with pytest.raises(D.DatasetError, match="no pictures"):
        D.load_image_folder(tmp_path, "train")


def test_image_folder_reads_pictures_as_the_app_does(tmp_path):
    """Transparency is put on white and EXIF rotation applied, exactly as `images.load_image` does for uploads."""
    folder = tmp_path / "d" / "train" / "a"
    folder.mkdir(parents=True)
    px = np.zeros((16, 16, 4), np.uint8)
    px[..., 0] = 200
    px[:, :8, 3] = 255  # left half opaque red, right half fully transparent
    Image.fromarray(px, "RGBA").save(folder / "1_rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    tall = np.zeros((16, 8, 3), np.uint8)  # stored 8 wide and 16 high: shown 16 wide and 8 high
    tall[:4] = 255  # the stored top rows, which end up on the right
    Image.fromarray(tall).save(folder / "2_exif.png", exif=exif)
    ds = D.load_image_folder(tmp_path / "d", "train", size=(8, 16))
    for got, name in zip(ds.images, ("1_rgba.png", "2_exif.png"), strict=True):
        np.testing.assert_array_equal(got, I.fit_to_input(I.load_image(folder / name), (8, 16)))
    assert ds.images[0, 0, -1].tolist() == [255, 255, 255]  # transparent -> white, not black
    assert ds.images[0, 0, 0].tolist() == [200, 0, 0]
    assert ds.images[1, :, -4:].min() == 255 and ds.images[1, :, :4].max() == 0  # rotated, not as stored


def test_image_folder_stops_at_a_broken_picture_and_names_it(tmp_path):
    """As before, one unreadable file stops the reading (nothing is skipped silently); now the error says which."""
    root = make_image_folder(tmp_path / "shapes")
    bad = root / "train" / "mango" / "009.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(D.DatasetError, match="009.png") as err:
        D.load_image_folder(root, "train")
    assert I.NOT_A_PICTURE in str(err.value)
    D.load_image_folder(root, "test")  # the other split is fine


def test_cache_of_decoded_pictures(tmp_path, monkeypatch):
    root = make_image_folder(tmp_path / "shapes")
    cache = tmp_path / "cache"
    first = D.load_image_folder(root, "train", cache_dir=cache)
    (cached,) = cache.iterdir()
    assert cached.name.endswith(D.CACHE_SUFFIX) and cached.name.startswith("shapes-train-32x32-")
    assert not any(p.name.endswith(D.CACHE_SUFFIX) for p in root.rglob("*"))  # the dataset is never written to

    decoded = []
    real = I.load_image
    monkeypatch.setattr(I, "load_image", lambda f: decoded.append(f) or real(f))
    again = D.load_image_folder(root, "train", cache_dir=cache)
    assert decoded == []  # nothing decoded: all from the cache
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert again.classes == first.classes and again.labels.dtype == np.int64

    picture = root / "train" / "apple" / "001.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(picture)  # a changed file: a new key, read again
    os.utime(picture, ns=(1, 1))
    changed = D.load_image_folder(root, "train", cache_dir=cache)
    assert len(decoded) == 9 and changed.images[1, 0, 0].tolist() == [1, 2, 3]
    assert [p.name for p in cache.iterdir()] != [cached.name] and len(list(cache.iterdir())) == 1  # old one gone

    D.load_image_folder(root, "train", per_class=2, cache_dir=cache)  # other settings: a file of their own
    D.load_image_folder(root, "test", cache_dir=cache)
    assert len(list(cache.iterdir())) == 3


def test_broken_cache_file_is_rebuilt(tmp_path):
    root = make_image_folder(tmp_path / "shapes")
    cache = tmp_path / "cache"
    want = D.load_image_folder(root, "train", cache_dir=cache)
    (cached,) = cache.iterdir()
    whole = cached.read_bytes()
    for broken in (b"garbage", whole[:len(whole) // 2], whole[:-40]):
        cached.write_bytes(broken)
        got = D.load_image_folder(root, "train", cache_dir=cache)
        np.testing.assert_array_equal(got.images, want.images)
        assert cached.read_bytes() == whole  # and written again, whole


def test_unwritable_cache_folder_still_reads(tmp_path):
    root = make_image_folder(tmp_path / "shapes")
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    ds = D.load_dataset(root, "train", cache_dir=blocker / "cache")
    assert len(ds) == 9


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNVIZ_CACHE_DIR", str(tmp_path / "mine"))
    assert D.default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("CNNVIZ_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert D.default_cache_dir() == tmp_path / "xdg" / "cnnviz"


def write_cifar(root, n_per_batch=4, names=(b"airplane", b"automobile", b"cat")):
    """The CIFAR-10 python layout: pickled dicts with bytes keys, R then G then B planes."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for k, fname in enumerate(["data_batch_1", "data_batch_2", "test_batch"]):
        d = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [(i + k) % len(names) for i in range(n_per_batch)]
        batches[fname] = (d, labels)
        with open(root / fname, "wb") as f:
            pickle.dump({b"batch_label": fname.encode(), b"data": d, b"labels": labels,
                         b"filenames": [b"x.png"] * n_per_batch}, f)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": list(names), b"num_vis": 3072, b"num_cases_per_batch": n_per_batch}, f)
    return batches


def test_cifar_batches_reader(tmp_path):
    root = tmp_path / "cifar"
    batches = write_cifar(root)
    d1, _ = batches["data_batch_2"]
    d1[1, :] = 0
    r, c = 5, 27  # row 5, column 27: distinct, so a transposed reader would miss it
    d1[1, 0 * 1024 + r * 32 + c] = 200  # R plane
    d1[1, 1 * 1024 + r * 32 + c] = 100  # G plane
    d1[1, 2 * 1024 + r * 32 + c] = 50  # B plane
    with open(root / "data_batch_2", "wb") as f:
        pickle.dump({b"data": d1, b"labels": batches["data_batch_2"][1]}, f)

    train = D.load_cifar_batches(root, "train")
    assert train.classes == ["airplane", "automobile", "cat"]
    assert train.images.shape == (8, 32, 32, 3) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.labels, batches["data_batch_1"][1] + batches["data_batch_2"][1])
    img = train.images[4 + 1]  # second picture of the second batch
    np.testing.assert_array_equal(img[r, c], [200, 100, 50])
    assert img.sum() == 350  # nothing else is lit
    np.testing.assert_array_equal(train.images[0], batches["data_batch_1"][0][0].reshape(3, 32, 32).transpose(1, 2, 0))

    test = D.load_cifar_batches(root, "test")
    assert test.images.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(test.labels, batches["test_batch"][1])


def test_cifar_errors(tmp_path):
    root = tmp_path / "cifar"
    write_cifar(root)
    (root / "test_batch").unlink()
    with pytest.raises(D.DatasetError):
        D.load_cifar_batches(root, "test")


def test_load_dataset_picks_the_reader(tmp_path):
    folder = make_image_folder(tmp_path / "folder")
    ds = D.load_dataset(folder, "train")
    assert ds.classes == ["apple", "mango", "zebra"] and len(ds) == 9

    write_cifar(tmp_path / "cifar")
    ds = D.load_dataset(tmp_path / "cifar", "train")
    assert ds.classes == ["airplane", "automobile", "cat"] and len(ds) == 8

    write_cifar(tmp_path / "download" / "cifar-10-batches-py")  # the folder as the archive unpacks
    ds = D.load_dataset(tmp_path / "download", "test")
    assert len(ds) == 4


def test_channel_stats():
    images = np.zeros((2, 4, 4, 3), np.uint8)
    images[..., 0] = 255
    images[0, ..., 2] = 255
    mean, std = D.channel_stats(images)
    assert mean == [1.0, 0.0, 0.5]
    assert std == [0.0, 0.0, 0.5]
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    mean, std = D.channel_stats(images)
    x = images / 255.0
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), atol=5e-5)
    np.testing.assert_allclose(std, x.std(axis=(0, 1, 2)), atol=5e-5)
