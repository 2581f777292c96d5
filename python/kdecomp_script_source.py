"""The source TorchScript compiles, amended where it refuses what Python runs and a rule says the
amended code computes the same values.

TorchScript reads every function it compiles through torch.jit.frontend.parse_def (the model's
methods, the helpers they call, torch.nn.functional's Python functions). While `scriptable_source`
is active, each parsed function's AST is amended before TorchScript builds it:

- a parameter without annotation whose default is None is compiled as Optional[Tensor], the one
  type under which TorchScript's Tensor default and that None agree (compiled as Tensor, the None
  is an undefined Tensor in the method's schema, which torch.jit.save cannot print);
- a global or closed-over name holding a plain constant (bool, int, float, str, None) is written
  as that literal: TorchScript refuses such values ("python value of type 'float' cannot be used
  as a value"), while a trace would bake in the same value;
- an int literal passed for a parameter declared float (a Python function's annotation, or every
  overload of a builtin operator) is written as a float literal: TorchScript converts an int
  argument only for Scalar parameters, so `F.hardtanh(x, min_val=-1)` fails to compile;
- a `requires_grad=` keyword that no overload of the called builtin accepts is dropped
  (`torch.zeros_like(t, requires_grad=False)`): it decides whether autograd records, never a value;
- a call of a lambda held in a module's attribute (`self.mlpf = lambda x: m.c_proj(m.c_fc(x))`)
  is replaced by the lambda's body, its parameters by the call's arguments and its closure's
  submodules by their attribute paths: TorchScript compiles no lambda;
- a parameter without annotation that every call of the exporter's meta run passed one non-Tensor
  type (`window_partition(x, 7)`) is annotated with it (ArgumentTypes): TorchScript takes an
  unannotated parameter to be a Tensor;
- an `if` that the module's own settings decide (`if self.use_checkpoint:`) becomes the branch
  Python takes, and a loop whose index selects a submodule (`self.transition[i]` under
  `for i, block in enumerate(self.blocks)`) is unrolled with the index a literal, the one index
  TorchScript takes.

On the model itself, a constant that its module class annotates as float (`__constants__`) but
that holds an int (`nn.Hardtanh(-1, 1)`) is a float while scripting, as the class declares.

A function with a type comment keeps its own types; anything a rule cannot decide is left as it
was (TorchScript then reports it as before)."""
import ast
import builtins
import contextlib
import copy
import inspect
import math
import operator
import os
import sys
import textwrap
import types

PLAIN_CONSTANT_TYPES = (bool, int, float, str, type(None))
FLOAT_TYPE_NAMES = ("float", "Optional[float]")


def closure_values(fn):
    """{free variable: value} of a function's closure; an empty cell (a name bound later in the
    enclosing function) is left out."""
    code = getattr(fn, "__code__", None)
    values = {}
    for name, cell in zip(code.co_freevars if code else (), getattr(fn, "__closure__", None) or ()):
        try:
            values[name] = cell.cell_contents
        except ValueError:
            pass
    return values


class FunctionScope:
    """What a name in the body of the compiled function `fn` refers to: its locals (parameters
    and every name the body binds) are unknown here; any other name is looked up as Python does,
    in the closure, then the function's globals, then builtins."""

    def __init__(self, fn, function):
        self.self_name = function.args.args[0].arg if function.args.args else None
        arguments = function.args
        self.local_names = {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}
        for special in (arguments.vararg, arguments.kwarg):
            if special is not None:
                self.local_names.add(special.arg)
        for statement in function.body:
            for node in ast.walk(statement):
                if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                    self.local_names.add(node.id)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.local_names.add(node.name)
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    self.local_names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ExceptHandler) and node.name:
                    self.local_names.add(node.name)
                elif isinstance(node, (ast.Global, ast.Nonlocal)):
                    self.local_names.update(node.names)  # rebound elsewhere: not a constant here
                elif isinstance(node, ast.arg):
                    self.local_names.add(node.arg)  # a nested lambda's parameter
        self.globals = getattr(fn, "__globals__", None) or {}
        self.closure = closure_values(fn)

    def lookup(self, name):
        """(True, value) for a name bound outside the function, else (False, None)."""
        if name in self.local_names:
            return False, None
        for namespace in (self.closure, self.globals, vars(builtins)):
            if name in namespace:
                return True, namespace[name]
        return False, None


def located_like(new, old):
    """`new` and every node under it at `old`'s place in the source: TorchScript's source ranges
    (and the importer's file:line metadata) then point at the code that was amended."""
    for node in ast.walk(new):
        for field in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
            if hasattr(old, field):
                setattr(node, field, getattr(old, field))
    return new


def literal_for(value, at):
    """The AST literal of a plain constant, or None where TorchScript has no literal for it (a
    non-finite float, an int outside int64)."""
    if type(value) not in PLAIN_CONSTANT_TYPES:
        return None
    if type(value) is float and not math.isfinite(value):
        return None
    if type(value) is int and not -(2**63) < value < 2**63:
        return None
    if type(value) in (int, float) and value < 0:
        # TorchScript's literals have no sign: a negative constant is a negation, as in source.
        return located_like(ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=-value)), at)
    return located_like(ast.Constant(value=value), at)


def none_defaults_as_optional(function):
    positional = function.args.args
    defaults = function.args.defaults
    # Keyword-only parameters with defaults TorchScript refuses whatever their type.
    with_defaults = zip(positional[len(positional) - len(defaults):], defaults)
    for arg, default in with_defaults:
        if arg.annotation is None and isinstance(default, ast.Constant) and default.value is None:
            annotation = ast.Subscript(value=ast.Name(id="Optional", ctx=ast.Load()),
                                       slice=ast.Name(id="Tensor", ctx=ast.Load()), ctx=ast.Load())
            arg.annotation = located_like(annotation, arg)  # source ranges point at the parameter


class ConstantInliner(ast.NodeTransformer):

    def __init__(self, scope):
        self.scope = scope

    def visit_Name(self, node):
        if not isinstance(node.ctx, ast.Load):
            return node
        found, value = self.scope.lookup(node.id)
        if not found or node.id in vars(builtins):
            return node  # builtins (True, None, len) are TorchScript's own
        return literal_for(value, node) or node


def inline_constants(function, scope):
    inliner = ConstantInliner(scope)
    function.body = [inliner.visit(statement) for statement in function.body]


def resolve_callee(func, scope):
    """The object a call's function expression names (`F.hardtanh`, `torch.zeros_like`, `helper`),
    found through modules and classes only (getattr on them runs no user code of consequence), or
    None."""
    chain = []
    node = func
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    found, value = scope.lookup(node.id)
    if not found:
        return None
    for attr in reversed(chain):
        if not isinstance(value, (types.ModuleType, type)):
            return None
        try:
            value = getattr(value, attr)
        except Exception:
            return None
    return value


def builtin_schemas(callee):
    """The schemas of the builtin operator TorchScript calls for `callee`, or None for a function
    it compiles from Python source (or does not know)."""
    import torch

    try:
        name = torch.jit._builtins._find_builtin(callee)
    except Exception:
        name = None
    if not name:
        return None
    return torch._C._jit_get_schemas_for_operator(name) or None


class ParameterTypes:
    """The declared types of a callee's parameters, by position and by keyword, as type names."""

    def __init__(self, callee):
        self.positional = None  # one set of type names per position, or None when unknown
        self.keyword = {}
        schemas = builtin_schemas(callee)
        self.builtin = schemas is not None
        if self.builtin:
            self.positional = []
            for schema in schemas:
                index = 0
                for argument in schema.arguments:
                    type_name = str(argument.type)
                    self.keyword.setdefault(argument.name, set()).add(type_name)
                    if not argument.kwarg_only:
                        if index == len(self.positional):
                            self.positional.append(set())
                        self.positional[index].add(type_name)
                        index += 1
            return
        if not inspect.isfunction(callee):
            return
        try:
            signature = inspect.signature(callee, follow_wrapped=False)
        except (TypeError, ValueError):
            return
        positional = []
        for parameter in signature.parameters.values():
            annotation = parameter.annotation
            if isinstance(annotation, str):
                type_name = annotation
            elif annotation is float:
                type_name = "float"
            elif getattr(annotation, "__origin__", None) is not None and \
                    set(getattr(annotation, "__args__", ())) == {float, type(None)}:
                type_name = "Optional[float]"
            else:
                type_name = None  # a type of no concern here
            names = {type_name} if type_name else {"?"}
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                positional.append(names)
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                self.keyword[parameter.name] = names
            if parameter.kind == parameter.VAR_POSITIONAL:
                break  # positions after it are not this parameter's
        self.positional = positional

    @staticmethod
    def only_float(type_names):
        return bool(type_names) and all(name in FLOAT_TYPE_NAMES for name in type_names)

    def float_at(self, index):
        return self.positional is not None and index < len(self.positional) and self.only_float(self.positional[index])

    def float_keyword(self, name):
        return self.only_float(self.keyword.get(name))

    def accepts_keyword(self, name):
        return name in self.keyword


def integer_literal_value(node):
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = integer_literal_value(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def as_float_literal(node):
    value = integer_literal_value(node)
    if value is None or not abs(value) < 2**53:  # an int a double holds exactly
        return node
    return literal_for(float(value), node)


def amend_calls(function, scope):
    """Int literals for float parameters become float literals; a requires_grad keyword no
    overload of a builtin accepts is dropped."""
    for statement in function.body:
        for node in ast.walk(statement):
            if not isinstance(node, ast.Call):
                continue
            callee = resolve_callee(node.func, scope)
            if callee is None:
                continue
            types_of = ParameterTypes(callee)
            if types_of.positional is None:
                continue
            for index, argument in enumerate(node.args):
                if isinstance(argument, ast.Starred):
                    break
                if types_of.float_at(index):
                    node.args[index] = as_float_literal(argument)
            kept = []
            for keyword in node.keywords:
                if keyword.arg == "requires_grad" and types_of.builtin and not types_of.accepts_keyword("requires_grad"):
                    continue
                if keyword.arg is not None and types_of.float_keyword(keyword.arg):
                    keyword.value = as_float_literal(keyword.value)
                kept.append(keyword)
            node.keywords = kept


class ModelModules:
    """The model's modules by class: what a method's `self` can be while TorchScript compiles it,
    and the lambdas those modules hold in their attributes."""

    def __init__(self, model):
        self.by_class = {}  # class -> [module]
        self.lambdas = {}  # class -> {attribute: [(module, lambda)]}
        self.paths = {}  # id(module) -> {id(submodule): path}
        for module in model.modules() if model is not None else ():
            self.by_class.setdefault(type(module), []).append(module)
            for name, value in vars(module).items():
                if isinstance(value, types.LambdaType) and value.__name__ == "<lambda>":
                    self.lambdas.setdefault(type(module), {}).setdefault(name, []).append((module, value))

    @staticmethod
    def defines(cls, fn):
        function = getattr(fn, "__func__", fn)  # TorchScript parses a module's bound methods
        name = getattr(function, "__name__", None)
        return any(vars(k).get(name) is function for k in cls.__mro__)

    def instances_of(self, fn):
        """The modules whose class has `fn` as a method."""
        return [m for cls, modules in self.by_class.items() if self.defines(cls, fn) for m in modules]

    def lambdas_for(self, fn):
        """{attribute: [(module, lambda)]} of the classes whose method `fn` is."""
        found = {}
        for cls, attributes in self.lambdas.items():
            if self.defines(cls, fn):
                for name, entries in attributes.items():
                    found.setdefault(name, []).extend(entries)
        return found

    def submodule_path(self, module, target):
        if id(module) not in self.paths:
            self.paths[id(module)] = {id(sub): path for path, sub in module.named_modules(remove_duplicate=False)}
        return self.paths[id(module)].get(id(target))


def lambda_node(fn):
    """The ast.Lambda of `fn`, found in its source by its parameters, or None."""
    try:
        lines, _ = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    source = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        try:
            tree = ast.parse("(\n" + source + "\n)")  # a lambda in a continued expression
        except SyntaxError:
            return None
    code = fn.__code__
    parameters = list(code.co_varnames[:code.co_argcount])
    candidates = [node for node in ast.walk(tree) if isinstance(node, ast.Lambda) and
                  [a.arg for a in node.args.args] == parameters]
    return candidates[0] if len(candidates) == 1 else None


def inlined_lambda_call(call, module, fn, self_name, scope, modules):
    """The lambda's body for `call`, as an expression of the calling method, or None where the
    substitution might not compute what the call does."""
    lam = lambda_node(fn)
    if lam is None or call.keywords or any(isinstance(a, ast.Starred) for a in call.args):
        return None
    arguments = lam.args
    if arguments.vararg or arguments.kwarg or arguments.kwonlyargs or arguments.posonlyargs or arguments.defaults:
        return None
    parameters = [a.arg for a in arguments.args]
    if len(parameters) != len(call.args):
        return None
    body = copy.deepcopy(lam.body)
    if any(isinstance(node, (ast.Lambda, ast.comprehension, ast.NamedExpr)) for node in ast.walk(body)):
        return None  # scopes of their own: left alone
    closure = closure_values(fn)
    if len(closure) != len(fn.__code__.co_freevars):
        return None  # an empty cell: what the lambda would read is not known
    uses = {}
    for node in ast.walk(body):
        if isinstance(node, ast.Name):
            uses[node.id] = uses.get(node.id, 0) + 1
    replacements = {}
    for parameter, argument in zip(parameters, call.args):
        # An argument is evaluated once: one used more than once must be a name or a literal.
        if uses.get(parameter, 0) > 1 and not isinstance(argument, (ast.Name, ast.Constant)):
            return None
        replacements[parameter] = argument
    for name in uses:
        if name in replacements:
            continue
        if name in closure:
            value = closure[name]
            path = modules.submodule_path(module, value) if hasattr(value, "named_modules") else None
            if path is not None:
                expression = ast.Name(id=self_name, ctx=ast.Load())
                for part in path.split(".") if path else []:
                    expression = ast.Attribute(value=expression, attr=part, ctx=ast.Load())
                replacements[name] = expression
                continue
            literal = literal_for(value, call)
            if literal is None:
                return None
            replacements[name] = literal
        elif fn.__globals__ is not scope.globals or name in scope.local_names:
            return None  # the name would mean something else in the calling method
    body = SubstituteNames(replacements).visit(body)
    return located_like(body, call)


class SubstituteNames(ast.NodeTransformer):

    def __init__(self, replacements):
        self.replacements = replacements

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id in self.replacements:
            return copy.deepcopy(self.replacements[node.id])
        return node


class LambdaCallInliner(ast.NodeTransformer):

    def __init__(self, fn, scope, modules):
        self.fn, self.scope, self.modules = fn, scope, modules
        self.held = modules.lambdas_for(fn)

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and
                func.value.id == self.scope.self_name and func.attr in self.held):
            return node
        # Every module of the class must give the same expression: TorchScript compiles the
        # method's source once per module type.
        expressions = {}
        for module, fn in self.held[func.attr]:
            expression = inlined_lambda_call(node, module, fn, self.scope.self_name, self.scope, self.modules)
            if expression is None:
                return node
            expressions[ast.dump(expression)] = expression
        return next(iter(expressions.values())) if len(expressions) == 1 else node


def inline_lambda_calls(function, fn, scope, modules):
    if scope.self_name is None or not modules.lambdas:
        return
    inliner = LambdaCallInliner(fn, scope, modules)
    if inliner.held:
        function.body = [inliner.visit(statement) for statement in function.body]


def type_name_of(value):
    """The TorchScript type of a value a function was called with, or None where it has none
    this rule names (a module, an object)."""
    import torch

    if isinstance(value, torch.Tensor):
        return "Tensor"
    if value is None:
        return "None"
    if type(value) in (bool, int, float, str):
        return type(value).__name__
    if isinstance(value, torch.Size) or type(value) is list:
        elements = {type_name_of(v) for v in value}
        if len(elements) != 1 or None in elements or "None" in elements:
            return None  # empty or mixed: no single element type
        return f"List[{elements.pop()}]"
    if type(value) is tuple and value:
        elements = [type_name_of(v) for v in value]
        if None in elements or "None" in elements:
            return None
        return f"Tuple[{', '.join(elements)}]"
    return None


class ArgumentTypes:
    """What the Python functions outside torch and the standard library were called with during
    a run (the exporter's meta forward): TorchScript takes an unannotated parameter to be a
    Tensor, and a helper called as `window_partition(x, 7)` does not compile. Like TorchScript's
    own profile-directed typing, a parameter that received one type in every call is annotated
    with it while scripting."""

    def __init__(self):
        import torch

        self.seen = {}  # code object -> {parameter: {type name or None}}
        self.observed = {}  # code object -> whether its calls are recorded
        # The standard library, torch, and the exporter's own directory.
        self.excluded_dirs = tuple(os.path.dirname(path) + os.sep for path in (os.__file__, torch.__file__, __file__))

    def _observes(self, code):
        observed = self.observed.get(code)
        if observed is None:
            filename = code.co_filename
            observed = not filename.startswith(self.excluded_dirs) and not filename.startswith("<")
            self.observed[code] = observed
        return observed

    def _profile(self, frame, event, arg):
        if event != "call":
            return
        code = frame.f_code
        if not self._observes(code):
            return
        count = code.co_argcount + code.co_kwonlyargcount
        parameters = self.seen.setdefault(code, {})
        for name in code.co_varnames[:count]:
            if name in frame.f_locals:
                parameters.setdefault(name, set()).add(type_name_of(frame.f_locals[name]))

    @contextlib.contextmanager
    def recording(self):
        previous = sys.getprofile()
        sys.setprofile(self._profile)
        try:
            yield self
        finally:
            sys.setprofile(previous)

    def annotation_for(self, fn, parameter, default_is_none):
        code = getattr(fn, "__code__", None)
        names = self.seen.get(code, {}).get(parameter)
        if not names or None in names:
            return None
        kinds = names - {"None"}
        if len(kinds) != 1:
            return None
        kind = kinds.pop()
        if kind == "Tensor":
            return None  # TorchScript's own default, or the None-default rule's Optional[Tensor]
        return f"Optional[{kind}]" if "None" in names or default_is_none else kind


def annotate_from_calls(function, fn, argument_types):
    positional = function.args.args
    defaults = [None] * (len(positional) - len(function.args.defaults)) + list(function.args.defaults)
    pairs = list(zip(positional, defaults)) + list(zip(function.args.kwonlyargs, function.args.kw_defaults))
    for arg, default in pairs:
        if arg.annotation is not None:
            continue
        default_is_none = isinstance(default, ast.Constant) and default.value is None
        annotation = argument_types.annotation_for(fn, arg.arg, default_is_none)
        if annotation is not None:
            arg.annotation = located_like(ast.parse(annotation, mode="eval").body, arg)


UNKNOWN = object()
INT_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                 ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
MODULE_CONTAINERS = ("ModuleList", "Sequential")
MOST_UNROLLED_ITERATIONS = 256


def self_attribute(node, self_name):
    """`attr` for an expression `self.attr`, else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == self_name:
        return node.attr
    return None


def container_length(instances, attr):
    """The length of the nn.ModuleList or nn.Sequential every module holds as `attr`, where it is
    the same in all of them, else None."""
    if attr is None or not instances:
        return None
    lengths = set()
    for module in instances:
        container = vars(module).get("_modules", {}).get(attr)
        if container is None or type(container).__name__ not in MODULE_CONTAINERS or \
                not type(container).__module__.startswith("torch.nn"):
            return None
        lengths.add(len(container))
    return lengths.pop() if len(lengths) == 1 else None


def unrollable_loop_index(loop, self_name):
    """The index name of a `for` TorchScript can only compile unrolled, by its form alone:
    `for i, item in enumerate(self.blocks)` or `for i in range(N)` with N a literal, `len(self.x)`
    or `self.n`, whose body indexes `self.<container>[i]`; else None."""
    iterable, target = loop.iter, loop.target
    if loop.orelse or not (isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name)) or \
            iterable.keywords or len(iterable.args) != 1:
        return None
    if iterable.func.id == "enumerate" and isinstance(target, ast.Tuple) and len(target.elts) == 2 and \
            all(isinstance(e, ast.Name) for e in target.elts) and self_attribute(iterable.args[0], self_name):
        index = target.elts[0].id
    elif iterable.func.id == "range" and isinstance(target, ast.Name):
        bound = iterable.args[0]
        is_len = isinstance(bound, ast.Call) and isinstance(bound.func, ast.Name) and bound.func.id == "len" and \
            len(bound.args) == 1 and self_attribute(bound.args[0], self_name)
        if not (isinstance(bound, ast.Constant) and type(bound.value) is int) and not is_len and \
                not self_attribute(bound, self_name):
            return None
        index = target.id
    else:
        return None
    indexes = any(isinstance(node, ast.Subscript) and self_attribute(node.value, self_name) and
                  isinstance(node.slice, ast.Name) and node.slice.id == index
                  for statement in loop.body for node in ast.walk(statement))
    return index if indexes else None


class StaticBranches(ast.NodeTransformer):
    """An `if` decided by the module's own settings becomes the branch Python takes: the other
    is never run, and may name what does not exist (`checkpoint.checkpoint` under
    `if self.use_checkpoint:` in a file that never imports it). A loop whose index selects a
    submodule is unrolled first, so that its branches on the index are decided too."""

    def __init__(self, self_name, instances, stored, scope, function):
        self.self_name, self.instances, self.stored = self_name, instances, stored
        self.scope, self.function = scope, function

    def builtin(self, name):
        return self.scope.lookup(name) == (True, getattr(builtins, name))

    def value_of(self, node):
        """The value of a condition that every module of the method's class decides alike, from
        literals and plain attributes of `self` (`self.use_checkpoint`, `self.shift_size > 0`), or
        UNKNOWN."""
        if isinstance(node, ast.Constant) and type(node.value) in PLAIN_CONSTANT_TYPES:
            return node.value
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == self.self_name:
            if not self.instances or node.attr in self.stored:
                return UNKNOWN
            values = [vars(m).get(node.attr, UNKNOWN) for m in self.instances]
            first = values[0]
            if type(first) not in PLAIN_CONSTANT_TYPES or any(type(v) is not type(first) or v != first for v in values):
                return UNKNOWN
            return first
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            operand = self.value_of(node.operand)
            if operand is UNKNOWN or (isinstance(node.op, ast.USub) and type(operand) is not int):
                return UNKNOWN
            return not operand if isinstance(node.op, ast.Not) else -operand
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len" and self.builtin("len") and \
                len(node.args) == 1 and not node.keywords:
            length = container_length(self.instances, self_attribute(node.args[0], self.self_name))
            return UNKNOWN if length is None else length
        if isinstance(node, ast.BinOp) and type(node.op) in INT_OPERATORS:
            left = self.value_of(node.left)
            right = self.value_of(node.right)
            if type(left) is not int or type(right) is not int or \
                    (isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0):
                return UNKNOWN
            return INT_OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.BoolOp):
            values = [self.value_of(v) for v in node.values]
            if any(v is UNKNOWN for v in values):
                return UNKNOWN
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left = self.value_of(node.left)
            right = self.value_of(node.comparators[0])
            if left is UNKNOWN or right is UNKNOWN:
                return UNKNOWN
            compare = {ast.Is: operator.is_, ast.IsNot: operator.is_not, ast.Eq: operator.eq, ast.NotEq: operator.ne,
                       ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}.get(type(node.ops[0]))
            if compare is None:
                return UNKNOWN
            try:
                return compare(left, right)
            except TypeError:  # None > 0: Python would raise at run time; left to TorchScript
                return UNKNOWN
        return UNKNOWN

    def visit_For(self, node):
        unrolled = self.unrolled(node)
        if unrolled is None:
            self.generic_visit(node)
            return node
        statements = []
        for statement in unrolled:
            result = self.visit(statement)
            statements.extend(result if isinstance(result, list) else [result])
        return statements or located_like(ast.Pass(), node)

    def unrolled(self, loop):
        """The statements of a loop TorchScript compiles only unrolled (`self.transition[i]`
        with `i` a loop index: it takes integer literals), one copy of the body per iteration
        with the index a literal, or None."""
        index = unrollable_loop_index(loop, self.self_name)
        if index is None or not self.builtin(loop.iter.func.id):
            return None
        item = loop.target.elts[1].id if isinstance(loop.target, ast.Tuple) else None
        bound = loop.iter.args[0]
        if item is not None:
            count = container_length(self.instances, self_attribute(bound, self.self_name))
        else:
            count = self.value_of(bound)
        if type(count) is not int or not 0 <= count <= MOST_UNROLLED_ITERATIONS:
            return None
        names = {index} | ({item} if item else set())
        inside = [node for statement in loop.body for node in ast.walk(statement)]
        if any(isinstance(node, (ast.Break, ast.Continue, ast.Return, ast.Yield, ast.YieldFrom)) for node in inside):
            return None
        if any(isinstance(node, ast.Name) and node.id in names and not isinstance(node.ctx, ast.Load) for node in inside):
            return None  # rebound in the body
        if self.read_after(loop, names):
            return None  # Python leaves the loop's last values there
        statements = []
        for k in range(count):
            replacements = {index: located_like(ast.Constant(value=k), loop.target)}
            if item is not None:
                replacements[item] = located_like(
                    ast.Subscript(value=copy.deepcopy(bound), slice=ast.Constant(value=k), ctx=ast.Load()), loop.target)
            substitute = SubstituteNames(replacements)
            statements.extend(substitute.visit(copy.deepcopy(statement)) for statement in loop.body)
        return statements

    def read_after(self, loop, names):
        """Whether a name the loop binds is read after it before a later loop binds it again."""
        end = loop.end_lineno
        later = [node for node in ast.walk(self.function) if getattr(node, "lineno", 0) > end]
        rebound = {id(node) for other in later if isinstance(other, ast.For) and
                   names & {t.id for t in ast.walk(other.target) if isinstance(t, ast.Name)}
                   for statement in other.body for node in ast.walk(statement)}
        return any(isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load) and
                   id(node) not in rebound for node in later)

    def visit_If(self, node):
        self.generic_visit(node)
        value = self.value_of(node.test)
        if value is UNKNOWN:
            return node
        taken = node.body if value else node.orelse
        return taken or located_like(ast.Pass(), node)


def decide_static_branches(function, fn, scope, modules):
    if scope.self_name is None:
        return
    instances = modules.instances_of(fn)
    if not instances:
        return
    stored = {node.attr for node in ast.walk(function) if isinstance(node, ast.Attribute) and
              isinstance(node.value, ast.Name) and node.value.id == scope.self_name and
              not isinstance(node.ctx, ast.Load)}
    transformer = StaticBranches(scope.self_name, instances, stored, scope, function)
    body = []
    for statement in function.body:
        result = transformer.visit(statement)
        body.extend(result if isinstance(result, list) else [result])
    function.body = body or [located_like(ast.Pass(), function)]


def amend(function, fn, source, modules, argument_types):
    if "# type:" not in source:
        if argument_types is not None:
            annotate_from_calls(function, fn, argument_types)
        none_defaults_as_optional(function)
    scope = FunctionScope(fn, function)
    decide_static_branches(function, fn, scope, modules)
    inline_lambda_calls(function, fn, scope, modules)
    inline_constants(function, scope)
    amend_calls(function, scope)


def class_annotations(cls):
    annotations = {}
    for klass in reversed(cls.__mro__):
        annotations.update(vars(klass).get("__annotations__", {}))
    return annotations


@contextlib.contextmanager
def float_constants(model):
    """Module constants declared float that hold ints, as floats while the context lasts."""
    changed = []
    for module in model.modules() if model is not None else ():
        constants = getattr(type(module), "__constants__", ())
        if not constants:
            continue
        annotations = class_annotations(type(module))
        for name in constants:
            value = vars(module).get(name)
            if type(value) is int and annotations.get(name) in (float, "float") and abs(value) < 2**53:
                changed.append((module, name, value))
                setattr(module, name, float(value))
    try:
        yield
    finally:
        for module, name, value in changed:
            setattr(module, name, value)


@contextlib.contextmanager
def scriptable_source(model=None, argument_types=None):
    """While active, TorchScript compiles each function's source with the amendments above; the
    parser and the model are restored after. A torch without the parser hook scripts as before.
    `argument_types`: an ArgumentTypes of a run of the model, or None."""
    import torch.jit.frontend as frontend

    original = getattr(frontend, "parse_def", None)
    if original is None:
        yield
        return
    modules = ModelModules(model)

    def parse_def(fn):
        parsed = original(fn)
        function = parsed.ast.body[0] if parsed.ast.body else None
        if isinstance(function, ast.FunctionDef):
            amend(function, fn, parsed.source, modules, argument_types)
        return parsed

    with float_constants(model):
        frontend.parse_def = parse_def
        try:
            yield
        finally:
            frontend.parse_def = original
