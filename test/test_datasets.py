"""Dataset loaders on tiny synthetic trees in each published layout (+ real CamVid if present)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semcomp_core.datasets import DATASETS, Sample, SegDataset, open_dataset
from semcomp_core.datasets.ade20k import ADE20K
from semcomp_core.datasets.camvid import CamVid
from semcomp_core.datasets.cityscapes import Cityscapes
from semcomp_core.datasets.cocostuff import UNUSED_RAW, COCOStuff
from semcomp_core.datasets.folder import FolderDataset
from semcomp_core.errors import RegistryError, UsageError

H, W = 6, 8


def _img(path: Path, seed: int = 0) -> np.ndarray:
    arr = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)  # .jpg is lossy; callers compare only .png pixels
    return arr


def _label(path: Path, values) -> np.ndarray:
    """A label PNG whose pixels cycle through ``values``."""
    flat = np.resize(np.asarray(values, dtype=np.uint8), H * W)
    arr = flat.reshape(H, W)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)  # 2-D uint8 -> mode "L"
    return arr


# -- registry / open_dataset ------------------------------------------------------------
def test_registry_names_and_duplicate_rejected():
    assert DATASETS.names() == ["ade20k", "camvid", "cityscapes", "cocostuff", "folder"]
    with pytest.raises(RegistryError, match="already registered"):
        DATASETS.register("camvid", CamVid)
    assert DATASETS.get("camvid") is CamVid


def test_open_dataset_unknown_name_and_option(tmp_path):
    with pytest.raises(UsageError, match="unknown dataset"):
        open_dataset("nope", tmp_path)
    with pytest.raises(UsageError, match="bogus"):
        open_dataset("camvid", tmp_path, bogus=1)


@pytest.mark.parametrize("name", ["camvid", "cityscapes", "ade20k", "cocostuff", "folder"])
def test_missing_root_names_path(tmp_path, name):
    missing = tmp_path / "does_not_exist"
    with pytest.raises(UsageError) as info:
        open_dataset(name, missing)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("name,sub", [("camvid", "val"), ("cityscapes", "leftImg8bit/val"),
                                      ("ade20k", "images/validation"), ("cocostuff", "images/val2017")])
def test_missing_split_folder_names_path(tmp_path, name, sub):
    with pytest.raises(UsageError) as info:
        open_dataset(name, tmp_path, "val")
    assert str(tmp_path / sub) in str(info.value)


def test_empty_split_and_bad_split_and_bad_limit(tmp_path):
    (tmp_path / "val").mkdir()
    with pytest.raises(UsageError, match="no samples"):
        CamVid(tmp_path, "val")
    with pytest.raises(UsageError, match="unknown split 'bogus'"):
        CamVid(tmp_path, "bogus")
    _img(tmp_path / "val" / "a.png")
    with pytest.raises(UsageError, match="limit"):
        CamVid(tmp_path, "val", limit=0)


def test_to_train_ids_rejects_out_of_range():
    ds = object.__new__(ADE20K)
    assert ds.to_train_ids(np.array([[0, 1, 150, 151]], dtype=np.int32)).tolist() == [[255, 0, 149, 255]]
    with pytest.raises(UsageError, match="0..255"):
        ds.to_train_ids(np.array([300]))


# -- CamVid ---------------------------------------------------------------------------------
def _camvid_tree(root: Path) -> None:
    for i, stem in enumerate(["0001TP_000020", "0001TP_000010", "Seq05VD_f00030"]):
        _img(root / "val" / f"{stem}.png", i)
        _label(root / "valannot" / f"{stem}.png", [0, 3, 10, 11])
    _img(root / "train" / "0006R0_f00930.png")
    _label(root / "trainannot" / "0006R0_f00930.png", [8])


def test_camvid_pairs_by_name(tmp_path):
    _camvid_tree(tmp_path)
    ds = CamVid(tmp_path, "val")
    assert [s.name for s in ds.samples] == ["0001TP_000010", "0001TP_000020", "Seq05VD_f00030"]
    assert ds.samples[0] == Sample("0001TP_000010", tmp_path / "val" / "0001TP_000010.png",
                                   tmp_path / "valannot" / "0001TP_000010.png")
    image, label = ds[1]
    assert image.dtype == np.uint8 and image.shape == (H, W, 3)
    assert np.array_equal(image, np.asarray(Image.open(tmp_path / "val" / "0001TP_000020.png")))
    assert label.shape == (H, W) and label.dtype == np.uint8
    assert label.ravel()[:4].tolist() == [0, 3, 10, 255]  # void 11 -> ignore
    assert ds.num_classes == 11 and ds.classes[3] == "Road"
    assert ds.palette.shape == (11, 3) and ds.palette[3].tolist() == [128, 64, 128]
    assert len(CamVid(tmp_path, "train")) == 1
    assert len(CamVid(tmp_path, "val", limit=2)) == 2


def test_camvid_listing_with_segnet_prefix(tmp_path):
    _camvid_tree(tmp_path)
    (tmp_path / "val.txt").write_text(
        "/SegNet/CamVid/val/Seq05VD_f00030.png /SegNet/CamVid/valannot/Seq05VD_f00030.png\n"
        "/SegNet/CamVid/val/0001TP_000020.png /SegNet/CamVid/valannot/0001TP_000020.png\n\n")
    ds = CamVid(tmp_path, "val")
    assert [s.name for s in ds.samples] == ["Seq05VD_f00030", "0001TP_000020"]  # listing order
    assert ds.samples[0].label_path == tmp_path / "valannot" / "Seq05VD_f00030.png"
    (tmp_path / "val.txt").write_text("val/missing.png valannot/missing.png\n")
    with pytest.raises(UsageError, match="missing.png"):
        CamVid(tmp_path, "val")


def test_camvid_missing_label_and_unlabelled(tmp_path):
    _camvid_tree(tmp_path)
    (tmp_path / "valannot" / "0001TP_000010.png").unlink()
    with pytest.raises(UsageError, match="0001TP_000010"):
        CamVid(tmp_path, "val")
    _img(tmp_path / "test" / "x.png")  # no testannot folder: unlabelled
    ds = CamVid(tmp_path, "test")
    assert ds.samples[0].label_path is None and ds[0][1] is None


# -- Cityscapes -----------------------------------------------------------------------------
def _cs_tree(root: Path) -> None:
    for city, seq, frame in [("munster", "000000", "000019"), ("frankfurt", "000001", "000294"),
                             ("frankfurt", "000000", "000294")]:
        stem = f"{city}_{seq}_{frame}"
        _img(root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png")
        _label(root / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png", [7, 26, 0, 24, 33, 9])
        _label(root / "gtFine" / "val" / city / f"{stem}_gtFine_color.png", [1])  # distractor


def test_cityscapes_label_ids_to_train_ids(tmp_path):
    _cs_tree(tmp_path)
    ds = Cityscapes(tmp_path, "val")
    assert [s.name for s in ds.samples] == ["frankfurt_000000_000294", "frankfurt_000001_000294",
                                            "munster_000000_000019"]
    assert ds.samples[0].label_path.name == "frankfurt_000000_000294_gtFine_labelIds.png"
    image, label = ds[0]
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    # road 7 -> 0, car 26 -> 13, unlabeled 0 -> 255, person 24 -> 11, bicycle 33 -> 18, parking 9 -> 255
    assert label.ravel()[:6].tolist() == [0, 13, 255, 11, 18, 255]
    assert ds.num_classes == 19 and ds.classes[0] == "road" and ds.classes[18] == "bicycle"
    assert ds.palette.shape == (19, 3) and ds.palette[13].tolist() == [0, 0, 142]
    lut_check = ds.to_train_ids(np.arange(256, dtype=np.uint8))
    assert lut_check[7] == 0 and lut_check[26] == 13 and lut_check[0] == 255 and lut_check[34] == 255


def test_cityscapes_prefers_train_id_files(tmp_path):
    _cs_tree(tmp_path)
    city = tmp_path / "gtFine" / "val" / "munster"
    _label(city / "munster_000000_000019_gtFine_labelTrainIds.png", [0, 13, 255, 18, 19])
    ds = Cityscapes(tmp_path, "val")
    assert ds.samples[2].label_path.name.endswith("_labelTrainIds.png")
    assert ds.load_label(2).ravel()[:5].tolist() == [0, 13, 255, 18, 255]  # kept as-is; >18 -> ignore
    assert ds.load_label(0).ravel()[0] == 0  # labelIds file still mapped (7 -> 0)


def test_cityscapes_test_split_and_sequence_unlabelled(tmp_path):
    _img(tmp_path / "leftImg8bit" / "test" / "berlin" / "berlin_000000_000019_leftImg8bit.png")
    _label(tmp_path / "gtFine" / "test" / "berlin" / "berlin_000000_000019_gtFine_labelIds.png", [0])
    ds = open_dataset("cityscapes", tmp_path, "test")
    assert len(ds) == 1 and ds.samples[0].label_path is None and ds[0][1] is None
    seq = tmp_path / "leftImg8bit_sequence" / "train" / "aachen"
    for frame in ("000001", "000000"):
        _img(seq / f"aachen_000000_{frame}_leftImg8bit.png")
    ds = open_dataset("cityscapes", tmp_path, "train", sequence=True)
    assert [s.name for s in ds.samples] == ["aachen_000000_000000", "aachen_000000_000001"]
    assert all(s.label_path is None for s in ds.samples)


# -- ADE20K ---------------------------------------------------------------------------------
def _ade_tree(root: Path) -> None:
    for i in (2, 1):
        _img(root / "images" / "validation" / f"ADE_val_{i:08d}.jpg", i)
        _label(root / "annotations" / "validation" / f"ADE_val_{i:08d}.png", [0, 1, 150, 13])
    _img(root / "images" / "training" / "ADE_train_00000001.jpg")
    _label(root / "annotations" / "training" / "ADE_train_00000001.png", [3])


@pytest.mark.parametrize("split,n", [("val", 2), ("validation", 2), ("train", 1), ("training", 1)])
def test_ade20k_split_names(tmp_path, split, n):
    _ade_tree(tmp_path)
    assert len(ADE20K(tmp_path, split)) == n


def test_ade20k_reduce_zero_label(tmp_path):
    _ade_tree(tmp_path)
    ds = ADE20K(tmp_path, "val")
    assert [s.name for s in ds.samples] == ["ADE_val_00000001", "ADE_val_00000002"]
    image, label = ds[0]
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert label.ravel()[:4].tolist() == [255, 0, 149, 12]  # other -> ignore, 1 -> 0, 13 (person) -> 12
    assert ds.num_classes == 150 and ds.classes[:3] == ("wall", "building", "sky")
    assert ds.classes[12] == "person" and ds.classes[149] == "flag"
    assert ds.palette.shape == (150, 3)


# -- COCO-Stuff -----------------------------------------------------------------------------
def test_cocostuff_171_mapping(tmp_path):
    for stem in ("000000000285", "000000000139"):
        _img(tmp_path / "images" / "val2017" / f"{stem}.jpg")
        _label(tmp_path / "annotations" / "val2017" / f"{stem}.png", [0, 11, 12, 181, 255, 91, 90])
    ds = open_dataset("cocostuff", tmp_path, "val2017")
    assert [s.name for s in ds.samples] == ["000000000139", "000000000285"]
    # 0 person -> 0; 11 unused -> 255; 12 stop sign -> 11; 181 wood -> 170; 255 -> 255;
    # 91 banner (first stuff) -> 80; 90 unused -> 255
    assert ds[0][1].ravel()[:7].tolist() == [0, 255, 11, 170, 255, 80, 255]
    assert ds.classes[11] == "stop sign" and ds.classes[80] == "banner" and ds.classes[170] == "wood"
    lut = ds.to_train_ids(np.arange(256, dtype=np.uint8))
    assert set(lut[list(UNUSED_RAW)].tolist()) == {255}
    assert sorted(lut[lut != 255].tolist()) == list(range(171))
    assert ds.palette.shape == (171, 3) and len({tuple(c) for c in ds.palette.tolist()}) == 171
    assert len(COCOStuff(tmp_path, "val", limit=1)) == 1
    with pytest.raises(UsageError, match="train2017"):
        COCOStuff(tmp_path, "train")


# -- Folder ---------------------------------------------------------------------------------
def test_folder_images_and_labels(tmp_path):
    imgs, labs = tmp_path / "imgs", tmp_path / "labs"
    _img(imgs / "b.png")
    _img(imgs / "a.jpg")
    (imgs / "notes.txt").write_text("x")
    _img(imgs / "sub" / "c.png")  # not recursive
    ds = FolderDataset(imgs)
    assert [s.name for s in ds.samples] == ["a", "b"] and ds.classes == () and ds[0][1] is None
    _label(labs / "a.png", [0, 7, 200])
    _label(labs / "b.png", [1])
    ds = open_dataset("folder", imgs, labels=labs, num_classes=3)
    assert ds.load_label(0).ravel()[:3].tolist() == [0, 7, 200]  # as-is
    assert ds.num_classes == 3 and ds.palette.shape == (3, 3)
    (labs / "b.png").unlink()
    with pytest.raises(UsageError, match="b.png"):
        FolderDataset(imgs, labels=labs)


def test_folder_without_images(tmp_path):
    with pytest.raises(UsageError, match="no samples"):
        FolderDataset(tmp_path)


def test_import_is_torch_free():
    import subprocess
    import sys
    code = "import sys, semcomp_core.datasets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert issubclass(DATASETS.get("folder"), SegDataset)


# -- real data ------------------------------------------------------------------------------
def test_real_camvid_val(camvid_root):
    ds = open_dataset("camvid", camvid_root, "val")
    assert len(ds) == 101
    assert ds.palette.shape == (11, 3)
    for i in (0, len(ds) - 1):
        image, label = ds[i]
        assert image.shape[:2] == label.shape and image.shape[2] == 3
        values = set(np.unique(label).tolist())
        assert values <= set(range(11)) | {255}
