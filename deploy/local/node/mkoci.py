#!/usr/bin/env python3
"""Packs a root filesystem as a one-layer OCI image archive that
`ctr -n k8s.io images import` accepts. There is no registry and no Docker
engine on these machines, so the real node's images are built from files
and imported into containerd directly.

usage: mkoci.py ROOTFS_DIR|LAYER.tar OUT.tar IMAGE_REF [--entrypoint ARG...]
                [--cmd ARG...] [--user UID:GID] [--env K=V]... [--workdir DIR]
                [--expose PORT/PROTO]... [--label K=V]... [--chown PATH=UID:GID]...

The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/*)
with one uncompressed layer. A directory is packed deterministically (sorted
entries, mtime 0, owner root unless --chown names the path, modes as on
disk) so equal inputs give equal image digests; a .tar (e.g. from
mmdebstrap) is used as the layer as it is. index.json names
the image with the annotation io.containerd.image.name, which is what makes
containerd's importer tag it with the full reference (e.g.
localhost/sparkvc/pause:3.10) instead of only the tag.
"""
import argparse
import hashlib
import io
import json
import os
import tarfile

ap = argparse.ArgumentParser()
ap.add_argument("rootfs")
ap.add_argument("out")
ap.add_argument("name", help="full image reference, e.g. localhost/sparkvc/pause:3.10")
ap.add_argument("--entrypoint", nargs="*", default=None)
ap.add_argument("--cmd", nargs="*", default=None)
ap.add_argument("--user", default="")
ap.add_argument("--env", action="append", default=[],
                help="K=V; replaces the default PATH or an earlier --env of the same K")
ap.add_argument("--workdir", default="/")
ap.add_argument("--expose", action="append", default=[], help="PORT/PROTO, e.g. 50051/tcp (ExposedPorts)")
ap.add_argument("--label", action="append", default=[], help="K=V (Labels)")
ap.add_argument("--chown", action="append", default=[],
                help="PATH=UID:GID: the owner of that path in a packed directory (e.g. var/lib/app=65532:65532)")
a = ap.parse_args()
owners = {}
for spec in a.chown:
    path, _, ids = spec.partition("=")
    uid, _, gid = ids.partition(":")
    owners[path.strip("/")] = (int(uid), int(gid))


def layer_tar(root):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        paths = []
        for d, dirs, files in os.walk(root):
            for n in dirs + files:
                paths.append(os.path.join(d, n))
        for p in sorted(paths):
            ti = t.gettarinfo(p, arcname=os.path.relpath(p, root))
            ti.mtime = 0
            ti.uid, ti.gid = owners.pop(ti.name, (0, 0))
            ti.uname = ti.gname = ""
            if ti.isreg():
                with open(p, "rb") as f:
                    t.addfile(ti, f)
            else:
                t.addfile(ti)
    if owners:
        raise SystemExit(f"mkoci.py: --chown names paths not in {root}: {sorted(owners)}")
    return buf.getvalue()


blobs = {}


def blob(data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


if os.path.isdir(a.rootfs):
    layer = layer_tar(a.rootfs)
else:
    if a.chown:
        raise SystemExit("mkoci.py: --chown applies to a directory, not a layer tar")
    with open(a.rootfs, "rb") as f:
        layer = f.read()
env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
for kv in a.env:
    k, _, v = kv.partition("=")
    env[k] = v
config = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Env": [f"{k}={v}" for k, v in env.items()], "WorkingDir": a.workdir},
    # Uncompressed layer: its diff_id is the digest of the blob itself.
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    "history": [{"created_by": "deploy/local/node/mkoci.py"}],
}
if a.entrypoint is not None:
    config["config"]["Entrypoint"] = a.entrypoint
if a.cmd is not None:
    config["config"]["Cmd"] = a.cmd
if a.user:
    config["config"]["User"] = a.user
if a.expose:
    config["config"]["ExposedPorts"] = {p: {} for p in a.expose}
if a.label:
    config["config"]["Labels"] = dict(kv.partition("=")[::2] for kv in a.label)
config_desc = blob(json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
layer_desc = blob(layer, "application/vnd.oci.image.layer.v1.tar")
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config_desc,
    "layers": [layer_desc],
}
manifest_desc = blob(json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
manifest_desc["annotations"] = {
    "io.containerd.image.name": a.name,
    "org.opencontainers.image.ref.name": a.name.rsplit(":", 1)[-1],
}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}

tmp = a.out + ".tmp"
with tarfile.open(tmp, "w") as t:
    def add(name, data):
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mode = 0o644
        t.addfile(ti, io.BytesIO(data))

    add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    add("index.json", json.dumps(index).encode())
    for digest, data in sorted(blobs.items()):
        add("blobs/sha256/" + digest.split(":", 1)[1], data)
os.replace(tmp, a.out)
print(a.out, a.name, manifest_desc["digest"])
