"""Which globals a pickle or skops file may name: Probity's allowlist policy, in one readable place.

Unpickling a file imports every global it names and calls some of them; a
skops file names the types it rebuilds.  Every such name is *classified*:

``reviewed``
    On the maintained allowlist below: reconstructors and classes of numpy,
    scipy, pandas, scikit-learn, joblib's array wrapper, pyarrow (pandas'
    string columns) and torch that build data from data without running
    commands, evaluating strings, touching files or sockets.  A file naming
    only reviewed globals loads after the user trusts that exact file.
``dangerous``
    Refused always, whatever the user trusts: anything that can run commands
    or code, import modules, touch files or sockets, load another serialised
    format, reach arbitrary attributes, or reach Probity's own packages
    (``engine``, ``gui``) -- see :func:`danger_reason`.
``unreviewed``
    Everything else.  Loaded only after per-file trust *and* a second,
    explicit acknowledgement (``allow_unreviewed=True``), which is recorded.

A name is classified by what it would really load: ``('numpy',
'testing.assert_equal')`` is a function of ``numpy.testing``, whatever the
first string says.  The name is resolved *statically* (module ``__dict__``
and :func:`inspect.getattr_static`, never ``__getattr__`` hooks or
descriptors), and a module is imported for that only when it belongs to a
reviewed package (:data:`REVIEWED_PACKAGES`) or is imported already; other
modules are classified by name alone and never imported.

The scanner (:mod:`engine.models.pickle_scan`) reports this classification
per global, and the loader's restricted unpickler asks :func:`admit` for
every global it finds, so the two cannot disagree.  The data here are
frozensets and read-only mappings, and no loaded file can reach this module
(Probity's packages are dangerous), so nothing a file does can change the
policy.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
import warnings
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "REVIEWED",
    "UNREVIEWED",
    "DANGEROUS",
    "Classification",
    "PolicyRefusal",
    "REVIEWED_GLOBALS",
    "REVIEWED_PACKAGES",
    "REVIEWED_SKOPS_TYPES",
    "JOBLIB_ARRAY_WRAPPER",
    "PARTIAL",
    "classify",
    "classify_type",
    "danger_reason",
    "admit",
]

REVIEWED: Final = "reviewed"
UNREVIEWED: Final = "unreviewed"
DANGEROUS: Final = "dangerous"

#: The one global joblib treats as "raw array bytes follow in the stream".
JOBLIB_ARRAY_WRAPPER: Final = "joblib.numpy_pickle.NumpyArrayWrapper"

#: ``functools.partial`` binds a callable for later calls.  It is not reviewed;
#: binding anything that is not reviewed makes it dangerous (the scanner sees the
#: binding in a pickle; a skops file does not show it, so there it is dangerous).
PARTIAL: Final = "functools.partial"


# ---------------------------------------------------------------------------
# Reviewed: the allowlist
# ---------------------------------------------------------------------------

# (module, space-separated qualified names).  Each name is the object's own
# ``__module__``/``__qualname__`` (what pickle writes), checked by
# tests/engine/test_pickle_policy.py to resolve to exactly that object.
_REVIEWED_TABLE: tuple[tuple[str, str], ...] = (
    # Python's own data types and the object constructors every protocol-2+ pickle uses.
    ("builtins", "bool bytearray bytes complex dict float frozenset int list object range set slice str tuple"),
    ("copyreg", "_reconstructor __newobj__ __newobj_ex__"),
    # pickle protocols 0-2 write bytes as _codecs.encode(text, 'latin1'): a codec lookup, no code of the file.
    ("_codecs", "encode"),
    # numpy: arrays, scalars, dtypes, random generators rebuilt from their state.
    (
        "numpy",
        "ndarray dtype bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 "
        "longdouble complex64 complex128 str_ bytes_ void datetime64 timedelta64",
    ),
    ("numpy._core.multiarray", "_reconstruct scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__bit_generator_ctor __generator_ctor __randomstate_ctor"),
    ("numpy.random.mtrand", "RandomState"),
    ("numpy.random._generator", "Generator"),
    ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64 PCG64DXSM"),
    ("numpy.random._philox", "Philox"),
    ("numpy.random._sfc64", "SFC64"),
    ("numpy.random.bit_generator", "SeedSequence __pyx_unpickle_SeedSequence"),
    # scipy: sparse matrices and arrays (plain index/data arrays).
    ("scipy.sparse._csr", "csr_matrix csr_array"),
    ("scipy.sparse._csc", "csc_matrix csc_array"),
    ("scipy.sparse._coo", "coo_matrix coo_array"),
    # pandas: frames, series, indexes, blocks and the dtypes of their columns.
    (
        "pandas",
        "DataFrame Series Index RangeIndex MultiIndex CategoricalIndex DatetimeIndex Categorical "
        "CategoricalDtype StringDtype Timestamp Timedelta",
    ),
    ("pandas.arrays", "ArrowStringArray StringArray"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
    ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.internals.managers", "BlockManager SingleBlockManager"),
    # pyarrow: the arrays behind pandas' string columns.
    ("pyarrow.lib", "_restore_array py_buffer type_for_alias"),
    # joblib: the placeholder joblib.load replaces by the raw array bytes that follow it.
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    # collections: ordered and default dictionaries (a default's factory is a global of its own, rated itself).
    ("collections", "OrderedDict defaultdict"),
    # The boosters' scikit-learn wrappers, built like scikit-learn estimators, and their boosters, whose
    # model bytes go to the library's native parser: reviewed because Probity's unpicklers check that state
    # as a booster file of the library is checked before it is set (engine/models/pickle_state.py).
    ("xgboost.core", "Booster"),
    ("xgboost.sklearn", "XGBClassifier XGBRegressor XGBRFClassifier XGBRFRegressor"),
    ("lightgbm.basic", "Booster"),
    ("lightgbm.sklearn", "LGBMClassifier LGBMRegressor"),
    # torch: plain value types (tensors need torch.load, which is dangerous).
    ("torch", "Size device dtype"),
    # scikit-learn internals that fitted estimators hold.
    (
        "sklearn._loss._loss",
        "CyHalfBinomialLoss CyHalfMultinomialLoss CyHalfSquaredError CyAbsoluteError "
        "CyPinballLoss CyHalfPoissonLoss CyHalfGammaLoss CyHalfTweedieLoss CyHuberLoss",
    ),
    ("sklearn._loss.link", "IdentityLink LogitLink LogLink MultinomialLogit HalfLogitLink Interval"),
    (
        "sklearn._loss.loss",
        "HalfBinomialLoss HalfMultinomialLoss HalfSquaredError AbsoluteError PinballLoss "
        "HalfPoissonLoss HalfGammaLoss HalfTweedieLoss HuberLoss ExponentialLoss",
    ),
    ("sklearn.tree._tree", "Tree"),
    ("sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper"),
    ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"),
    (
        "sklearn.metrics._dist_metrics",
        "newObj EuclideanDistance64 ManhattanDistance64 ChebyshevDistance64 MinkowskiDistance64",
    ),
    ("sklearn.neighbors._kd_tree", "KDTree newObj"),
    ("sklearn.neighbors._ball_tree", "BallTree newObj"),
    ("sklearn.neural_network._stochastic_optimizers", "AdamOptimizer SGDOptimizer"),
    ("sklearn.utils._bunch", "Bunch"),
    # scikit-learn estimators: built by copyreg._reconstructor and filled by BaseEstimator.__setstate__.
    ("sklearn.calibration", "CalibratedClassifierCV"),
    ("sklearn.compose._column_transformer", "ColumnTransformer"),
    ("sklearn.compose._target", "TransformedTargetRegressor"),
    ("sklearn.cross_decomposition._pls", "CCA PLSCanonical PLSRegression PLSSVD"),
    ("sklearn.decomposition._dict_learning", "DictionaryLearning MiniBatchDictionaryLearning SparseCoder"),
    ("sklearn.decomposition._factor_analysis", "FactorAnalysis"),
    ("sklearn.decomposition._fastica", "FastICA"),
    ("sklearn.decomposition._incremental_pca", "IncrementalPCA"),
    ("sklearn.decomposition._kernel_pca", "KernelPCA"),
    ("sklearn.decomposition._lda", "LatentDirichletAllocation"),
    ("sklearn.decomposition._nmf", "MiniBatchNMF NMF"),
    ("sklearn.decomposition._pca", "PCA"),
    ("sklearn.decomposition._sparse_pca", "MiniBatchSparsePCA SparsePCA"),
    ("sklearn.decomposition._truncated_svd", "TruncatedSVD"),
    ("sklearn.discriminant_analysis", "LinearDiscriminantAnalysis QuadraticDiscriminantAnalysis"),
    ("sklearn.dummy", "DummyClassifier DummyRegressor"),
    ("sklearn.ensemble._bagging", "BaggingClassifier BaggingRegressor"),
    (
        "sklearn.ensemble._forest",
        "ExtraTreesClassifier ExtraTreesRegressor RandomForestClassifier RandomForestRegressor RandomTreesEmbedding",
    ),
    ("sklearn.ensemble._gb", "GradientBoostingClassifier GradientBoostingRegressor"),
    (
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting",
        "HistGradientBoostingClassifier HistGradientBoostingRegressor",
    ),
    ("sklearn.ensemble._iforest", "IsolationForest"),
    ("sklearn.ensemble._stacking", "StackingClassifier StackingRegressor"),
    ("sklearn.ensemble._voting", "VotingClassifier VotingRegressor"),
    ("sklearn.ensemble._weight_boosting", "AdaBoostClassifier AdaBoostRegressor"),
    ("sklearn.feature_selection._from_model", "SelectFromModel"),
    ("sklearn.feature_selection._rfe", "RFE RFECV"),
    ("sklearn.feature_selection._sequential", "SequentialFeatureSelector"),
    (
        "sklearn.feature_selection._univariate_selection",
        "GenericUnivariateSelect SelectFdr SelectFpr SelectFwe SelectKBest SelectPercentile",
    ),
    ("sklearn.feature_selection._variance_threshold", "VarianceThreshold"),
    ("sklearn.frozen._frozen", "FrozenEstimator"),
    ("sklearn.impute._base", "MissingIndicator SimpleImputer"),
    ("sklearn.impute._knn", "KNNImputer"),
    ("sklearn.isotonic", "IsotonicRegression"),
    ("sklearn.kernel_approximation", "AdditiveChi2Sampler Nystroem PolynomialCountSketch RBFSampler SkewedChi2Sampler"),
    ("sklearn.kernel_ridge", "KernelRidge"),
    ("sklearn.linear_model._base", "LinearRegression"),
    ("sklearn.linear_model._bayes", "ARDRegression BayesianRidge"),
    (
        "sklearn.linear_model._coordinate_descent",
        "ElasticNet ElasticNetCV Lasso LassoCV MultiTaskElasticNet MultiTaskElasticNetCV MultiTaskLasso "
        "MultiTaskLassoCV",
    ),
    ("sklearn.linear_model._glm.glm", "GammaRegressor PoissonRegressor TweedieRegressor"),
    ("sklearn.linear_model._huber", "HuberRegressor"),
    ("sklearn.linear_model._least_angle", "Lars LarsCV LassoLars LassoLarsCV LassoLarsIC"),
    ("sklearn.linear_model._logistic", "LogisticRegression LogisticRegressionCV"),
    ("sklearn.linear_model._omp", "OrthogonalMatchingPursuit OrthogonalMatchingPursuitCV"),
    ("sklearn.linear_model._passive_aggressive", "PassiveAggressiveClassifier PassiveAggressiveRegressor"),
    ("sklearn.linear_model._perceptron", "Perceptron"),
    ("sklearn.linear_model._quantile", "QuantileRegressor"),
    ("sklearn.linear_model._ransac", "RANSACRegressor"),
    ("sklearn.linear_model._ridge", "Ridge RidgeCV RidgeClassifier RidgeClassifierCV"),
    ("sklearn.linear_model._stochastic_gradient", "SGDClassifier SGDOneClassSVM SGDRegressor"),
    ("sklearn.linear_model._theil_sen", "TheilSenRegressor"),
    ("sklearn.multiclass", "OneVsOneClassifier OneVsRestClassifier OutputCodeClassifier"),
    ("sklearn.multioutput", "ClassifierChain MultiOutputClassifier MultiOutputRegressor RegressorChain"),
    ("sklearn.naive_bayes", "BernoulliNB CategoricalNB ComplementNB GaussianNB MultinomialNB"),
    ("sklearn.neighbors._classification", "KNeighborsClassifier RadiusNeighborsClassifier"),
    ("sklearn.neighbors._graph", "KNeighborsTransformer RadiusNeighborsTransformer"),
    ("sklearn.neighbors._kde", "KernelDensity"),
    ("sklearn.neighbors._lof", "LocalOutlierFactor"),
    ("sklearn.neighbors._nca", "NeighborhoodComponentsAnalysis"),
    ("sklearn.neighbors._nearest_centroid", "NearestCentroid"),
    ("sklearn.neighbors._regression", "KNeighborsRegressor RadiusNeighborsRegressor"),
    ("sklearn.neighbors._unsupervised", "NearestNeighbors"),
    ("sklearn.neural_network._multilayer_perceptron", "MLPClassifier MLPRegressor"),
    ("sklearn.neural_network._rbm", "BernoulliRBM"),
    ("sklearn.pipeline", "FeatureUnion Pipeline"),
    (
        "sklearn.preprocessing._data",
        "Binarizer KernelCenterer MaxAbsScaler MinMaxScaler Normalizer PowerTransformer QuantileTransformer "
        "RobustScaler StandardScaler",
    ),
    ("sklearn.preprocessing._discretization", "KBinsDiscretizer"),
    ("sklearn.preprocessing._encoders", "OneHotEncoder OrdinalEncoder"),
    ("sklearn.preprocessing._function_transformer", "FunctionTransformer"),
    ("sklearn.preprocessing._label", "LabelBinarizer LabelEncoder MultiLabelBinarizer"),
    ("sklearn.preprocessing._polynomial", "PolynomialFeatures SplineTransformer"),
    ("sklearn.preprocessing._target_encoder", "TargetEncoder"),
    ("sklearn.svm._classes", "LinearSVC LinearSVR NuSVC NuSVR OneClassSVM SVC SVR"),
    ("sklearn.tree._classes", "DecisionTreeClassifier DecisionTreeRegressor ExtraTreeClassifier ExtraTreeRegressor"),
)

#: Every reviewed global, as ``"module.qualname"``.
REVIEWED_GLOBALS: Final[frozenset[str]] = frozenset(
    f"{module}.{name}" for module, names in _REVIEWED_TABLE for name in names.split()
)

#: Packages whose modules may be imported to resolve a name (importing them runs
#: only their own, installed code).  Anything else is classified by name only.
REVIEWED_PACKAGES: Final[frozenset[str]] = frozenset(
    {"numpy", "scipy", "pandas", "sklearn", "joblib", "pyarrow", "torch", "xgboost", "lightgbm", "catboost"}
)

#: skops types Probity approves without a per-file decision, and why that is safe.
#: skops never calls code named by the file for these: it builds them from plain
#: arrays and numbers.  The two tree types are the reason skops itself does not
#: trust them: their node arrays hold raw indices that scikit-learn follows without
#: bounds checks, so Probity checks every index before the model is used
#: (:func:`engine.models.loading.validate_tree_structures`).  Other skops types
#: follow the pickle policy: reviewed ones need per-file trust, unreviewed ones also
#: ``allow_unreviewed``, dangerous ones are refused.
REVIEWED_SKOPS_TYPES: Final[types.MappingProxyType[str, str]] = types.MappingProxyType(
    {
        "numpy.dtype": "rebuilt by numpy from an empty .npy array with allow_pickle=False",
        "sklearn.tree._tree.Tree": "node indices, features and value shapes are bounds-checked by Probity",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": (
            "node indices, features and category bitsets are bounds-checked by Probity"
        ),
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer": (
            "plain attributes (learning rate, moment arrays), used only for further training"
        ),
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer": (
            "plain attributes (learning rate, velocity arrays), used only for further training"
        ),
    }
)


# ---------------------------------------------------------------------------
# Dangerous: refused always
# ---------------------------------------------------------------------------

#: Probity's own code: no file may import, read or change it (the policy included).
OWN_PACKAGES: Final[frozenset[str]] = frozenset({"engine", "gui", "main", "__main__", "probity"})

# Whole modules (and their submodules) whose members run commands, run or load
# code, open files or sockets, or reach arbitrary objects.  No model needs them.
_DANGEROUS_MODULES: Final[frozenset[str]] = frozenset(
    {
        # processes and the OS
        "os",
        "posix",
        "nt",
        "_winapi",
        "msvcrt",
        "winreg",
        "_winreg",
        "subprocess",
        "_posixsubprocess",
        "commands",
        "popen2",
        "pty",
        "tty",
        "termios",
        "fcntl",
        "resource",
        "signal",
        "sys",
        "shutil",
        "tempfile",
        "pathlib",
        "glob",
        "zipfile",
        "tarfile",
        "mmap",
        "atexit",
        "faulthandler",
        "sqlite3",
        "dbm",
        "shelve",
        "io",
        "_io",
        "fileinput",
        "filecmp",
        "linecache",
        "tokenize",
        "uuid",
        "platform",
        "sysconfig",
        "_sysconfigdata",
        "ctypes",
        "_ctypes",
        "cffi",
        "gzip",
        "bz2",
        "lzma",
        # network
        "socket",
        "_socket",
        "socketserver",
        "ssl",
        "select",
        "selectors",
        "asyncio",
        "http",
        "urllib",
        "urllib2",
        "urllib3",
        "httplib",
        "requests",
        "httpx",
        "aiohttp",
        "ftplib",
        "smtplib",
        "poplib",
        "imaplib",
        "nntplib",
        "telnetlib",
        "xmlrpc",
        "webbrowser",
        "antigravity",
        "mailbox",
        "wsgiref",
        # running, compiling or importing code
        "builtins",
        "__builtin__",
        "exceptions",
        "importlib",
        "imp",
        "pkgutil",
        "pkg_resources",
        "zipimport",
        "runpy",
        "site",
        "code",
        "codeop",
        "pdb",
        "bdb",
        "trace",
        "cProfile",
        "profile",
        "_lsprof",
        "timeit",
        "doctest",
        "pydoc",
        "idlelib",
        "lib2to3",
        "turtle",
        "turtledemo",
        "tkinter",
        "ensurepip",
        "venv",
        "pip",
        "setuptools",
        "distutils",
        "unittest",
        "test",
        "types",
        "inspect",
        "gc",
        "multiprocessing",
        "_multiprocessing",
        "concurrent",
        "threading",
        "_thread",
        "sched",
        "ast",
        "dis",
        "compileall",
        "py_compile",
        "string",
        "typing",
        "abc",
        "_abc",
        "weakref",
        "_weakref",
        "copy",
        "warnings",
        "contextlib",
        "logging",
        "jinja2",
        "mako",
        "IPython",
        "numba",
        "cython",
        "Cython",
        "PySide6",
        "PySide2",
        "shiboken6",
        "shiboken2",
        "PyQt5",
        "PyQt6",
        "pyqtgraph",
        # reaching arbitrary attributes and items
        "operator",
        "_operator",
        # other deserialisers, which would load bytes this policy never saw
        "marshal",
        "pickle",
        "_pickle",
        "pickletools",
        "dill",
        "cloudpickle",
        "joblib",
        "skops",
        "copyreg",
        "copy_reg",
        "_compat_pickle",
        # library corners that exec strings, load files or call native code
        "numpy.testing",
        "numpy.f2py",
        "numpy.distutils",
        "numpy.ctypeslib",
        "numpy.lib.npyio",
        "numpy.lib._npyio_impl",
        "numpy.lib.format",
        "numpy.lib.utils",
        "numpy.lib._utils_impl",
        "numpy._pytesttester",
        "numpy.lib._datasource",
        "numpy.lib.recfunctions",
        "pandas.io",
        "pandas.core.computation",
        "pandas._testing",
        "pandas.util",
        "scipy.io",
        "scipy.weave",
        "scipy._lib._ccallback",
        "scipy._lib._testutils",
        "scipy.datasets",
        "sklearn.datasets",
        "sklearn.utils._testing",
        "sklearn.externals",
        "sklearn.utils._show_versions",
        "logging.config",
        "logging.handlers",
        "torch.serialization",
        "torch.hub",
        "torch.jit",
        "torch.package",
        "torch._inductor",
        "torch._dynamo",
        "torch.fx",
        "torch.ops",
        "torch.classes",
        "torch.library",
        "torch.utils",
        "torch.storage",
        "torch._C",
        "torch.onnx",
        "torch.export",
        "torch.compiler",
    }
)

# Module path parts that mark testing helpers and entry points (temporary files, subprocesses,
# the running program itself).
_DANGEROUS_MODULE_PARTS: Final[frozenset[str]] = frozenset({"testing", "_testing", "_pytesttester", "__main__"})
# Test suites and build scripts run code when imported: never imported to resolve a name
# (such names stay unreviewed).
_NOT_IMPORTED_PARTS: Final[frozenset[str]] = frozenset({"tests", "test", "conftest", "setup", "_distributor_init"})

# The objects a pickle may take from builtins/copyreg even though the modules as a whole are refused.
_EXEMPT: Final[frozenset[str]] = frozenset(
    name for name in REVIEWED_GLOBALS if name.startswith(("builtins.", "copyreg.", "joblib.numpy_pickle."))
)

# Names dangerous wherever they live (each part of a dotted name is checked, so
# ``logging.os.system`` or ``pandas.DataFrame.to_pickle`` are caught too).
_DANGEROUS_MODULE_NAMES: Final[frozenset[str]] = frozenset(
    {
        "os",
        "posix",
        "nt",
        "sys",
        "subprocess",
        "builtins",
        "__builtin__",
        "__builtins__",
        "shutil",
        "socket",
        "pickle",
        "marshal",
        "ctypes",
        "importlib",
        "runpy",
        "pty",
    }
)
_DANGEROUS_NAMES: Final[frozenset[str]] = _DANGEROUS_MODULE_NAMES | frozenset(
    {
        # commands and code
        "system",
        "popen",
        "Popen",
        "getoutput",
        "getstatusoutput",
        "call",
        "check_call",
        "check_output",
        "fork",
        "forkpty",
        "kill",
        "killpg",
        "startfile",
        "putenv",
        "unsetenv",
        "compile",
        "import_module",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "input",
        "apply",
        "attrgetter",
        "methodcaller",
        "itemgetter",
        "interact",
        "query",
        "locate",
        "resolve_name",
        "get_type_hints",
        "render",
        "timeit",
        "repeat",
        "Timer",
        "QProcess",
        # files
        "open",
        "open_code",
        "fdopen",
        "remove",
        "removedirs",
        "unlink",
        "rmdir",
        "rmtree",
        "rename",
        "renames",
        "chmod",
        "chown",
        "symlink",
        "link",
        "truncate",
        "mkfifo",
        "mknod",
        "memmap",
        "fromfile",
        "tofile",
        "FileIO",
        "FileHandler",
        "GzipFile",
        "BZ2File",
        "LZMAFile",
        "ZipFile",
        "TarFile",
        "mkdir",
        "makedirs",
        "copyfile",
        "copytree",
        "move",
        # native code
        "CDLL",
        "PyDLL",
        "WinDLL",
        "OleDLL",
        "LibraryLoader",
        "cdll",
        "pydll",
        "windll",
        "dlopen",
        "LowLevelCallable",
    }
)
# Prefixes of dangerous names (checked after leading underscores are stripped):
# exec*, spawn*, eval*, load*/loads (other deserialisers), save*/dump*/write*/to_*
# (file writers), read_* (file readers such as read_pickle), run* (runpy, runcode ...),
# import*/resolve*/locate* (import anything by name, e.g. torch._utils._import_dotted_name).
_DANGEROUS_PREFIXES: Final = (
    "exec",
    "spawn",
    "posix_spawn",
    "eval",
    "load",
    "save",
    "dump",
    "write",
    "to_",
    "read_",
    "run",
    "import",
    "resolve",
    "locate",
    "popen",
    "system",
)
# Full names that match a heuristic above but are plain data constructors.
_SAFE_FULL_NAMES: Final[frozenset[str]] = frozenset({"re._compile", "re.compile"})
_WRAPPER_NAMES: Final[frozenset[str]] = frozenset({"NumpyArrayWrapper", "NDArrayWrapper", "ZNDArrayWrapper"})
_PY2_MODULES: Final = types.MappingProxyType({"__builtin__": "builtins", "copy_reg": "copyreg"})
#: Longest name rated at all, in characters and in dotted parts.  Real Python names are far
#: shorter; rating a longer one would cost time that grows with the square of its length.
MAX_NAME_LENGTH: Final = 1024
_UFUNC_PACKAGES: Final = frozenset({"numpy", "scipy"})
MAX_NAME_PARTS: Final = 64
_DOTTED: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def _name_danger(module: str, name: str) -> str | None:
    """Why ``module.name`` is dangerous by its spelling alone, or ``None``."""
    full = f"{module}.{name}"
    # Python 2 spellings that pickle protocols 0-2 rename to the reviewed builtins/copyreg objects.
    py3 = f"{_PY2_MODULES.get(module, module)}.{name}"
    if full in _EXEMPT or py3 in _EXEMPT or full in _SAFE_FULL_NAMES:
        return None
    parts = module.split(".")
    if parts[0] in OWN_PACKAGES:
        return f"it reaches Probity's own code ({parts[0]})"
    if module in ("builtins", "__builtin__", "exceptions"):
        return "a Python builtin able to run code or reach any object"
    if module in ("copyreg", "copy_reg"):
        return "it changes the pickle registries"
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if prefix in _DANGEROUS_MODULES:
            return f"module {prefix} can run commands, load code or touch files"
    for part in parts:
        if part in _DANGEROUS_MODULE_PARTS:
            return f"module {module} is a test suite or entry point, which runs code when imported"
    for part in parts[1:]:
        if part in _DANGEROUS_MODULE_NAMES:
            return f"module path reaches {part}"
    for part in name.split("."):
        if part in _WRAPPER_NAMES:
            # Only the canonical joblib name is understood by the scanner's array skipper.
            return "a joblib array wrapper under an unexpected name"
        if len(part) > 4 and part.startswith("__") and part.endswith("__"):
            return f"it reaches the special attribute {part}"
        if part in _DANGEROUS_NAMES or part in OWN_PACKAGES:
            return f"{part} can run commands or code, or touch files"
        bare = part.lstrip("_")
        if bare.startswith(_DANGEROUS_PREFIXES) and bare[:1].islower():
            return f"{part} can run code, or load or write files"
    return None


# ---------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Classification:
    """How the policy rates one global (pickle) or type (skops).

    Attributes
    ----------
    name: the name as the file writes it, ``"module.qualname"``.
    status: ``"reviewed"``, ``"unreviewed"`` or ``"dangerous"``.
    reason: one phrase saying why.
    resolves_to: ``"module.qualname"`` of the object the name really reaches, when
        it could be resolved without importing anything unreviewed; else ``None``.
    """

    name: str
    status: str
    reason: str
    resolves_to: str | None = None


class PolicyRefusal(Exception):
    """The restricted unpickler met a global the policy does not admit."""

    def __init__(self, verdict: Classification) -> None:
        super().__init__(f"{verdict.name} is {verdict.status}: {verdict.reason}")
        self.verdict = verdict


_MISSING: Final = object()


def _module(module: str, *, may_import: bool) -> types.ModuleType | None:
    found = sys.modules.get(module)
    if isinstance(found, types.ModuleType):
        return found
    if not may_import:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except Exception:  # an absent or broken optional package: the name stays unresolved
        return None


def _walk(obj: Any, parts: list[str]) -> Any:
    """Follow attribute names the way pickle does, but statically (no hooks, no descriptors run).

    Returns ``_MISSING`` where pickle's ``getattr`` would need a ``__getattr__`` hook
    or an import.  A step through a dangerous module counts as dangerous: the caller
    sees the module in the result's path.
    """
    for part in parts:
        if isinstance(obj, types.ModuleType):
            value = vars(obj).get(part, _MISSING)
            if value is _MISSING:
                return _MISSING
        else:
            try:
                value = inspect.getattr_static(obj, part)
            except AttributeError:
                return _MISSING
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        obj = value
    return obj


def _canonical(obj: Any) -> tuple[str, str] | None:
    """``(module, qualname)`` an object names itself by, as pickle would write it."""
    if isinstance(obj, types.ModuleType):
        name = vars(obj).get("__name__")
        return (name, "") if isinstance(name, str) else None
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    if not isinstance(obj, type) and not callable(obj):
        return None  # a data object (a constant, a dict ...): not a class or function
    try:
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    except Exception:
        return None
    if isinstance(module, str) and isinstance(qualname, str):
        return module, qualname
    return None


def _modules_on_path(root: types.ModuleType, parts: list[str]) -> list[str]:
    """Names of the modules a dotted walk passes through after its root (``logging.os`` passes os)."""
    seen: list[str] = []
    obj: Any = root
    for part in parts[:-1]:
        obj = _walk(obj, [part])
        if obj is _MISSING:
            break
        if isinstance(obj, types.ModuleType):
            seen.append(str(vars(obj).get("__name__", part)))
    return seen


def _rate_object(written: str, obj: Any) -> Classification:
    """Classify the object a name resolved to."""
    if isinstance(obj, types.ModuleType):
        return Classification(
            written,
            DANGEROUS,
            "it is a module object, through which a file could read or change anything in it",
            str(vars(obj).get("__name__")),
        )
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(obj, numpy.ufunc) and written.partition(".")[0] in _UFUNC_PACKAGES:
        # A universal function that numpy or scipy defines in its own namespace (np.log1p, scipy.special.expit
        # …), reached there by the name as written: element-wise arithmetic on arrays, written in C, that a
        # FunctionTransformer commonly holds.  A ufunc a file could build (np.frompyfunc) lives nowhere there.
        return Classification(
            written, REVIEWED, "a numpy or scipy universal function: element-wise arithmetic", written
        )
    canon = _canonical(obj)
    if canon is None:
        return Classification(written, UNREVIEWED, "it is not a class or function that names itself")
    module, qualname = canon
    resolved = f"{module}.{qualname}"
    reason = _name_danger(module, qualname) if _DOTTED.match(resolved) else "its real name is not a dotted name"
    if reason is not None and resolved not in REVIEWED_GLOBALS:
        return Classification(
            written, DANGEROUS, reason if resolved == written else f"it is {resolved}: {reason}", resolved
        )
    if resolved in REVIEWED_GLOBALS:
        top = _module(module, may_import=module.partition(".")[0] in REVIEWED_PACKAGES)
        if top is not None and _walk(top, qualname.split(".")) is obj:
            return Classification(written, REVIEWED, "on Probity's reviewed list", resolved)
        return Classification(written, UNREVIEWED, f"it claims to be {resolved} but is another object", resolved)
    return Classification(written, UNREVIEWED, "not on Probity's reviewed list", resolved)


def _too_long(written: str) -> Classification | None:
    if len(written) > MAX_NAME_LENGTH or written.count(".") >= MAX_NAME_PARTS:
        shown = written[:80] + "…"
        return Classification(
            shown,
            DANGEROUS,
            f"the name is {len(written):,} characters long, longer than any "
            f"real Python name ({MAX_NAME_LENGTH:,} at most)",
        )
    return None


def _decide(module: str, name: str) -> tuple[Classification, Any]:
    written = f"{module}.{name}"
    too_long = _too_long(written) if isinstance(module, str) and isinstance(name, str) else None
    if too_long is not None:
        return too_long, _MISSING
    if not (isinstance(module, str) and isinstance(name, str) and _DOTTED.match(module) and _DOTTED.match(name)):
        return Classification(written, DANGEROUS, "the name is not a plain dotted Python name"), _MISSING
    reason = _name_danger(module, name)
    if reason is not None:
        return Classification(written, DANGEROUS, reason), _MISSING
    package = module.partition(".")[0]
    importable = package in REVIEWED_PACKAGES and _NOT_IMPORTED_PARTS.isdisjoint(module.split("."))
    root = _module(module, may_import=importable)
    if root is None:
        why = (
            "its module cannot be imported here"
            if package in REVIEWED_PACKAGES
            else "not on Probity's reviewed list (classified by name; its module was not imported)"
        )
        return Classification(written, UNREVIEWED, why), _MISSING
    parts = name.split(".")
    for passed in _modules_on_path(root, parts):
        reason = _name_danger(passed, "_")
        if reason is not None:
            return Classification(written, DANGEROUS, f"its path passes through {passed}: {reason}"), _MISSING
    obj = _walk(root, parts)
    if obj is _MISSING:
        return Classification(
            written, UNREVIEWED, "it does not resolve without running the module's own lookup code"
        ), _MISSING
    return _rate_object(written, obj), obj


def classify(module: str, name: str) -> Classification:
    """Classify the global ``module.name`` a pickle names (``name`` may be dotted).

    Never imports a module outside :data:`REVIEWED_PACKAGES` that is not imported
    already, and never runs ``__getattr__`` hooks or descriptors.
    """
    return _decide(module, name)[0]


def danger_reason(module: str, name: str) -> str | None:
    """Why loading ``module.name`` from a file is refused always, or ``None`` when it is not."""
    verdict = classify(module, name)
    return verdict.reason if verdict.status == DANGEROUS else None


def classify_type(full: str) -> Classification:
    """Classify a type a skops file declares, given as one dotted ``"module.qualname"``.

    The split between module and qualified name is not written in the file, so
    every split is tried: dangerous if any split is, otherwise the split with
    the longest module that resolves decides.  ``functools.partial`` is
    dangerous here, since a skops file does not show what it binds.
    """
    if full == PARTIAL:
        return Classification(
            full, DANGEROUS, "functools.partial calls whatever it binds, which a skops file does not show", full
        )
    too_long = _too_long(full)
    if too_long is not None:
        return too_long
    parts = full.split(".")
    if len(parts) < 2 or not _DOTTED.match(full):
        return Classification(full, DANGEROUS, "the name is not a plain dotted Python name")
    best: Classification | None = None
    for cut in range(len(parts) - 1, 0, -1):
        verdict = classify(".".join(parts[:cut]), ".".join(parts[cut:]))
        if verdict.status == DANGEROUS:
            return Classification(full, DANGEROUS, verdict.reason, verdict.resolves_to)
        if best is None and verdict.resolves_to is not None:
            best = verdict
    if best is None:
        return Classification(full, UNREVIEWED, "not on Probity's reviewed list")
    return Classification(full, best.status, best.reason, best.resolves_to)


def admit(module: str, name: str, *, allow_unreviewed: bool) -> Any:
    """The object a restricted unpickler may return for ``module.name``, or :class:`PolicyRefusal`.

    Reviewed names return the very object :func:`classify` resolved; dangerous names
    are refused always; unreviewed names only with ``allow_unreviewed``, and then
    what the real import gives is rated again (it must not turn out dangerous).
    """
    verdict, obj = _decide(module, name)
    if verdict.status == DANGEROUS or (verdict.status == UNREVIEWED and not allow_unreviewed):
        raise PolicyRefusal(verdict)
    if obj is not _MISSING:
        return obj
    importlib.import_module(module)  # acknowledged by the caller; ImportError propagates
    obj = sys.modules[module]
    for part in name.split("."):
        obj = getattr(obj, part)
    again = _rate_object(verdict.name, obj)
    if again.status == DANGEROUS:
        raise PolicyRefusal(again)
    return obj
