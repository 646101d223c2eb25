#!/usr/bin/env python3
"""Converts Resemblyzer's pretrained.pt (torch legacy serialization) to safetensors, without torch.

  convert_resemblyzer.py pretrained.pt OUT.safetensors

The legacy format is five things in one file: four pickles (magic number, protocol version 1001,
sys-info dict, the checkpoint dict) and a pickled list of storage keys, followed by each storage in
that key order as an int64 element count and raw little-endian float32 values. Tensors in the
checkpoint are persistent ids ('storage', type, key, location, numel) rebuilt by
torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...); several are views into one shared
storage. Python's pickle reads all of it with find_class / persistent_load overridden.

Output: the tensors of checkpoint["model_state"] as F32, contiguous, names unchanged, sorted, with
__metadata__ naming the source. Standard library only.
"""
import json
import pickle
import struct
import sys

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
FLOAT_STORAGE_TYPES = {"FloatStorage"}


class StorageRef:
    def __init__(self, key, numel, type_name, base_offset=0):
        self.key, self.numel, self.type_name = key, numel, type_name
        self.base_offset = base_offset  # elements into the root storage (storage views)


class TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


class StateDict(dict):
    """collections.OrderedDict stand-in; accepts the `_metadata` attribute torch sets on state dicts."""


class Opaque:
    """Stands for any other class in the checkpoint (optimizer state); never used."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


def rebuild_tensor_v2(storage, offset, size, stride, *rest):
    return TensorRef(storage, offset, size, stride)


class StorageType:
    def __init__(self, name):
        self.name = name


class CheckpointUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor_v2
        if module == "torch" and name.endswith("Storage"):
            return StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return StateDict
        return Opaque

    def persistent_load(self, pid):
        # ('storage', type, root_key, location, numel[, view_metadata]); older torch adds
        # view_metadata = (view_key, offset_in_root, view_numel) for a view into a shared storage
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise ValueError("unexpected persistent id kind %r" % (kind,))
        view = pid[5] if len(pid) > 5 else None
        if view is not None:
            _view_key, offset, view_numel = view
            return StorageRef(key, view_numel, storage_type.name, base_offset=offset)
        return StorageRef(key, numel, storage_type.name)


def read_checkpoint(path):
    with open(path, "rb") as f:
        magic = pickle.load(f)
        if magic != LEGACY_MAGIC:
            raise ValueError("%s: magic %r, expected torch legacy magic %#x" % (path, magic, LEGACY_MAGIC))
        protocol = pickle.load(f)
        if protocol != LEGACY_PROTOCOL:
            raise ValueError("%s: protocol %r, expected %d" % (path, protocol, LEGACY_PROTOCOL))
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", False):
            raise ValueError("%s: big-endian checkpoint not supported" % path)
        checkpoint = CheckpointUnpickler(f).load()
        keys = pickle.load(f)
        storages = {}
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            data = f.read(4 * numel)
            if len(data) != 4 * numel:
                raise ValueError("%s: storage %s truncated" % (path, key))
            storages[key] = data
        if f.read(1):
            raise ValueError("%s: trailing bytes after the last storage" % path)
    return checkpoint, storages


def contiguous_bytes(tensor, storages):
    if tensor.storage.type_name not in FLOAT_STORAGE_TYPES:
        raise ValueError("storage type %s, expected FloatStorage" % tensor.storage.type_name)
    expected_stride, acc = [], 1
    for dim in reversed(tensor.size):
        expected_stride.insert(0, acc)
        acc *= dim
    if tensor.size and tuple(expected_stride) != tensor.stride:
        raise ValueError("non-contiguous tensor: size %s stride %s" % (tensor.size, tensor.stride))
    data = storages[tensor.storage.key]
    start = 4 * (tensor.storage.base_offset + tensor.offset)
    end = start + 4 * acc
    if end > len(data):
        raise ValueError("tensor runs past its storage")
    return data[start:end]


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        shape, data = tensors[name]
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(header_bytes)))
        out.write(header_bytes)
        for blob in blobs:
            out.write(blob)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    checkpoint, storages = read_checkpoint(sys.argv[1])
    state = checkpoint["model_state"]
    tensors, total = {}, 0
    for name, tensor in state.items():
        if not isinstance(tensor, TensorRef):
            raise ValueError("model_state[%r] is not a tensor" % name)
        tensors[name] = (tensor.size, contiguous_bytes(tensor, storages))
        n = 1
        for dim in tensor.size:
            n *= dim
        total += n
        print("%-22s %s" % (name, "x".join(map(str, tensor.size)) or "scalar"))
    metadata = {
        "source": "resemblyzer==0.1.4 resemblyzer/pretrained.pt (model_state)",
        "authors": "Corentin Jemine / Resemble AI",
        "license": "Apache-2.0",
        "training_step": str(checkpoint.get("step")),
    }
    write_safetensors(sys.argv[2], tensors, metadata)
    print("%d tensors, %d values -> %s" % (len(tensors), total, sys.argv[2]))


if __name__ == "__main__":
    main()
