# The system libraries the engine was built against, checked at import: a
# runtime libzstd or libxxhash older than the headers it was compiled with can
# lack functions or behave differently, so refuse it and say both versions.

cdef extern from "zstd.h":
    unsigned ZSTD_versionNumber()
    enum:
        ZSTD_VERSION_NUMBER

cdef extern from "xxhash.h":
    unsigned XXH_versionNumber()
    enum:
        XXH_VERSION_NUMBER


def _version_text(unsigned v):
    return f"{v // 10000}.{v // 100 % 100}.{v % 100}"


def library_versions():
    """{"zstd": (built, runtime), "xxhash": (built, runtime)} as version strings."""
    return {"zstd": (_version_text(ZSTD_VERSION_NUMBER), _version_text(ZSTD_versionNumber())),
            "xxhash": (_version_text(XXH_VERSION_NUMBER), _version_text(XXH_versionNumber()))}


def _check_runtime_libraries():
    for name, (built, runtime) in library_versions().items():
        if tuple(map(int, runtime.split("."))) < tuple(map(int, built.split("."))):
            raise ImportError(f"ntdsbackup was built against lib{name} {built} but the "
                              f"system provides {runtime}; install lib{name} >= {built} "
                              "or rebuild ntdsbackup")


_check_runtime_libraries()
