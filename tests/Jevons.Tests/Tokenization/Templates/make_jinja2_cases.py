"""Regenerates jinja2-cases.json: each template rendered by Jinja2 configured as transformers does
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, tojson = json.dumps with
ensure_ascii=False, raise_exception, strftime_now at a fixed clock). Run: python3 make_jinja2_cases.py"""
import json, datetime
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

CLOCK = datetime.datetime(2024, 7, 26, 9, 5, 3)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda f: CLOCK.strftime(f)

M = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
CASES = [
    # output, literals, whitespace control
    ("{{ 'a' }}{{ \"b\" }}{{ 1 }}{{ 1.5 }}{{ none }}{{ true }}{{ false }}", {}),
    ("{{ 'a\\nb\\t\\\\\\'\\x41\\u00e9' }}", {}),
    ("{{ 'ab' 'cd' }}", {}),
    ("a  {{- ' b ' -}}  c", {}),
    ("a\n  {%- if true %} x {% endif -%}\n  b", {}),
    ("<\n  {% if true %}\n    yes\n  {% endif %}\n>", {}),
    ("<\n  {%+ if true %}\n    yes\n  {% endif +%}\n>", {}),
    ("a {# comment #} b\n{# line comment #}\nc", {}),
    ("  {# c #}\nx\n  {#- c -#}  y", {}),
    ("{% raw %}{{ not evaluated }}{% endraw %}", {}),
    ("{{ x }}|{{ x.y if x is defined else 'u' }}|{{ d.missing }}|{{ d.missing is defined }}", {"d": {}}),
    ("{{ {'a': 1}['a'] }}{{ [1, 2, 3][-1] }}{{ (1, 2)[0] }}{{ 'abc'[1] }}", {}),
    ("{{ {'a': {'b': 2}} }}{{ [1, 'x', none, true, 1.0, (1,), (1, 2)] }}", {}),
    ("{{ \"it's\" }}|{{ [\"it's\", 'say \"hi\"', 'both \\' \"'] }}", {}),
    # arithmetic and operators
    ("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}", {}),
    ("{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 1.5e-5 }} {{ 0.0001 }} {{ 3.0 }} {{ -0.0 }} {{ 10 / 4 }} {{ 1e100 }}", {}),
    ("{{ 'a' ~ 1 ~ none ~ x }}|{{ 'ab' * 3 }}|{{ [1] * 2 }}|{{ [1] + [2] }}|{{ 'a' + 'b' }}", {}),
    ("{{ 1 < 2 < 3 }} {{ 1 < 2 > 3 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 != 2 }}", {}),
    ("{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ not 1 in [1] }}", {}),
    ("{{ 1 and 2 }} {{ 0 and 2 }} {{ 0 or 'x' }} {{ '' or [] }} {{ not '' }} {{ none or 0 }}", {}),
    ("{{ 'y' if x else 'n' }} {{ 'y' if 1 }}| {{ 1 if 0 else 2 if 0 else 3 }}", {}),
    ("{{ -3|abs }} {{ - 2 ** 2 }} {{ messages|length - 1 }}", {"messages": M}),
    # slicing
    ("{{ [1,2,3,4,5][1:3] }}{{ [1,2,3,4,5][::2] }}{{ [1,2,3,4,5][::-1] }}{{ [1,2,3,4,5][-2:] }}{{ [1,2,3,4,5][:-2] }}{{ [1,2,3,4,5][4:1:-1] }}", {}),
    ("{{ 'hello'[1:] }}|{{ 'hello'[::-1] }}|{{ 'hello'[-3:-1] }}|{{ 'héllo😀x'[5:] }}|{{ 'a😀b'|length }}", {}),
    # for loops
    ("{% for x in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", {}),
    ("{% for x in 'abc' %}{{ loop.previtem|default('^') }}{{ x }}{{ loop.nextitem|default('$') }} {% endfor %}", {}),
    ("{% for x in [] %}a{% else %}empty{% endfor %}{% for x in [1] %}{{ x }}{% else %}no{% endfor %}", {}),
    ("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}|{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}", {}),
    ("{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }}{% endfor %}", {}),
    ("{% for x in range(10) if x is odd %}{{ x }}{{ loop.index }}/{{ loop.length }} {% endfor %}", {}),
    ("{% for row in [[1, 2], [3]] %}{% for c in row %}{{ loop.index }}{{ c }}{% endfor %}-{{ loop.index }}|{% endfor %}", {}),
    ("{% for x in [1, 2, 3] %}{{ loop.cycle('a', 'b') }}{% endfor %}", {}),
    ("{% for i in [1, 2] %}{% if i == 2 %}[{{ x }}]{% endif %}{% set x = i %}{% endfor %}[{{ x }}]", {}),
    ("{% for item in tree recursive %}{{ item.name }}{% if item.children %}({{ loop(item.children) }}){% endif %}{% endfor %}",
     {"tree": [{"name": "a", "children": [{"name": "b"}, {"name": "c", "children": [{"name": "d"}]}]}, {"name": "e"}]}),
    ("{% for x in range(3) %}{{ x }}{% endfor %}{{ range(2, 8, 3)|list }}{{ range(5, 0, -2)|list }}", {}),
    # set, namespace, scoping
    ("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}{% for i in [1] %}{% set x = 3 %}{% endfor %}{{ x }}", {}),
    ("{% set ns = namespace(n=0, s='') %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}", {}),
    ("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (3, 4) %}{% set c, d = t %}{{ c }}{{ d }}", {}),
    ("{% set block %}Hello {{ 'W' }}{% endset %}[{{ block }}]{% set up | upper %}shout{% endset %}{{ up }}", {}),
    ("{% set messages = messages[1:] %}{{ messages|length }}{{ messages[0].role }}", {"messages": M}),
    # macros and call
    ("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(name='c', punct='.') }}", {}),
    ("{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}", {}),
    ("{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}inner{% endcall %}", {}),
    ("{% macro list(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) list([1, 2]) %}[{{ x }}]{% endcall %}", {}),
    ("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}", {}),
    ("{% filter upper %}abc {{ 'd' }}{% endfilter %}", {}),
    # filters
    ("{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ 'Hello'|upper }}{{ 'Hello'|lower }}|{{ 'hello WORLD'|capitalize }}|{{ 'hello wORLD-x (y'|title }}", {}),
    ("{{ [1, 2]|length }}{{ 'abc'|count }}{{ {'a': 1}|length }}{{ x|length }}", {}),
    ("{{ x|default('d') }}{{ none|default('d') }}{{ ''|default('d', true) }}{{ 0|d('z', boolean=true) }}{{ 'v'|default('d') }}", {}),
    ("{{ v|tojson }}|{{ v|tojson(indent=2) }}|{{ [1, [2, {}], []]|tojson(indent=4) }}", {"v": {"a": [1, 2.5, "é\n\"\\\u2028<>&"], "b": None, "c": True, "d": {"x": "\u0001\u007f"}}}),
    ("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ [1, 2]|tojson(separators=(',', ':')) }}|{{ 'x'|tojson }}|{{ 3|tojson }}|{{ (1, 2)|tojson }}", {}),
    ("{{ 3.7|int }}{{ '42'|int }}{{ 'x'|int }}{{ 'x'|int(7) }}{{ '3.5'|int }}{{ '0x1A'|int(0, 16) }}|{{ '2.5'|float }}{{ 3|float }}{{ 'q'|float }}", {}),
    ("{{ 'a-b-a'|replace('a', 'x') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ [1, 2, 3]|join(', ') }}|{{ ['a', 'b']|join }}|{{ users|join(', ', attribute='name') }}", {"users": [{"name": "x"}, {"name": "y"}]}),
    ("{{ [3, 1, 2]|first }}{{ [3, 1, 2]|last }}{{ 'abc'|first }}{{ []|first }}|{{ 'abc'|list }}|{{ {'a': 1}|list }}", {}),
    ("{{ {'a': 1, 'b': 2}|items|list }}|{{ x|items|list }}|{{ {'b': 1, 'A': 2}|dictsort }}", {}),
    ("{{ [3, 1, 2]|sort }}{{ [3, 1, 2]|sort(reverse=true) }}{{ ['b', 'A', 'c']|sort }}{{ ['b', 'A', 'c']|sort(case_sensitive=true) }}{{ users|sort(attribute='age')|map(attribute='name')|list }}",
     {"users": [{"name": "x", "age": 3}, {"name": "y", "age": 1}]}),
    ("{{ [1, 2, 1, 3]|unique|list }}{{ ['a', 'A', 'b']|unique|list }}{{ [1, 2, 3]|reverse|list }}{{ 'abc'|reverse }}", {}),
    ("{{ users|selectattr('active')|map(attribute='name')|join(',') }}|{{ users|rejectattr('active')|map(attribute='name')|join(',') }}|{{ users|selectattr('name', 'equalto', 'y')|list|length }}|{{ users|selectattr('age', 'gt', 1)|map(attribute='name')|list }}",
     {"users": [{"name": "x", "active": True, "age": 3}, {"name": "y", "active": False, "age": 1}]}),
    ("{{ [1, 2, 3, 4]|select('odd')|list }}{{ [1, 2, 3, 4]|reject('even')|list }}{{ [1, 2, 3]|select('divisibleby', 3)|list }}{{ ['a', 'B']|map('upper')|list }}{{ [{'a': {'b': 1}}, {}]|map(attribute='a.b', default=0)|list }}", {}),
    ("{{ 'a\nb\n\nc'|indent }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent('> ', blank=true) }}|{{ 'x'|indent(first=true) }}", {}),
    ("{{ -2|abs }}{{ 2.5|round }}{{ 3.5|round }}{{ 2.675|round(2) }}{{ 2.1|round(0, 'ceil') }}{{ 2.9|round(method='floor') }}{{ 3|round }}", {}),
    ("{{ 'one two  three'|wordcount }}{{ [1, 2, 3]|sum }}{{ [1, 2, 3]|max }}{{ [1, 2, 3]|min }}{{ users|sum(attribute='n') }}", {"users": [{"n": 2}, {"n": 5}]}),
    ("{{ '%s-%d' % ('a', 3) }}|{{ '%s'|format('x') }}|{{ '%05.1f|%-4s|%r' % (3.14159, 'ab', 'q') }}", {}),
    ("{{ [1, 2, 3, 4, 5]|batch(2)|list }}{{ [1, 2, 3]|batch(2, 0)|list }}|{{ '<b>x</b> <i>y</i>'|striptags }}|{{ '<&>\"'|e }}|{{ 'x'|center(5) }}|", {}),
    ("{{ 'abcdefghij klmnop'|truncate(9) }}|{{ 'abcdefghijklmnop'|truncate(9, true) }}|{{ 'short'|truncate(9) }}|{{ [1, 2]|string }}{{ 1|string }}", {}),
    # tests
    ("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 1 is number }}{{ 1.5 is number }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ [] is sequence }}{{ 1 is iterable }}", {}),
    ("{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 0 is false }}{{ true is boolean }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is integer }}", {}),
    ("{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ 1 is in [1] }}{{ 1 is eq 1 }}{{ 2 is gt 1 }}{{ 'a' is lower }}{{ 'A' is upper }}{{ x is not defined }}{{ 1 is not none }}", {}),
    ("{{ range is callable }}{{ 'upper' is filter }}{{ 'odd' is test }}{{ none is sameas none }}{{ 1 is ne 2 }}{{ 1 is le 1 }}", {}),
    # string methods
    ("{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}{{ '  x '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '\n\nx\n'.lstrip('\n') }}|{{ 'x  '.rstrip() }}|", {}),
    ("{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a b c'.split(' ', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}{{ '  a b  c '.split(None, 1) }}{{ 'a b c'.rsplit(None, 1) }}", {}),
    ("{{ 'hello'.replace('l', 'L') }}{{ 'hello'.replace('l', 'L', 1) }}{{ 'Hello'.upper() }}{{ 'Hello'.lower() }}{{ \"they're bill's\".title() }}{{ 'hELLO'.capitalize() }}", {}),
    ("{{ 'hello'.find('l') }}{{ 'hello'.find('z') }}{{ 'hello'.rfind('l') }}{{ 'hello'.count('l') }}{{ '-'.join(['a', 'b']) }}{{ 'a\\nb\\r\\nc'.splitlines() }}", {}),
    ("{{ '{} and {}'.format(1, 'b') }}|{{ '{0}{1}{0}'.format('a', 'b') }}|{{ '{name}!'.format(name='x') }}|{{ '{:>4}|{:<3}|{:^5}|{:.2f}'.format('a', 'b', 'c', 3.14159) }}", {}),
    ("{{ '123'.isdigit() }}{{ 'abc'.isalpha() }}{{ ' '.isspace() }}{{ 'AB'.isupper() }}{{ 'ab'.islower() }}{{ 'a'.zfill(3) }}{{ 'ab'.center(6, '*') }}{{ 'a=b=c'.partition('=') }}", {}),
    ("{{ message.content.split('</think>')[-1].lstrip('\\n') }}|{{ message.content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
     {"message": {"content": "<think>\nreason\n</think>\n\nanswer"}}),
    # dict methods and attribute access
    ("{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 9) }}{{ d.keys()|list }}{{ d.values()|list }}{{ d.items()|list }}{{ d['a'] }}{{ d.a }}", {"d": {"a": 1, "b": 2}}),
    ("{{ d['items'] }}|{{ d.items()|list }}", {"d": {"items": "key"}}),
    ("{{ dict(a=1, b=2) }}{{ dict({'x': 1}, y=2) }}", {}),
    ("{% for m in messages %}{{ m['role'] }}:{{ m.content }};{% endfor %}", {"messages": M}),
    ("{{ messages[0].content is string }}{{ messages[1]['content'] }}{{ messages[-1].role }}{{ (messages|selectattr('role', 'equalto', 'user')|list)[0].content }}", {"messages": M}),
    ("{{ content[0].text if content is not string else content }}|{% for p in content2 %}{% if p.type == 'text' %}{{ p.text }}{% endif %}{% endfor %}",
     {"content": [{"type": "text", "text": "T"}], "content2": [{"type": "text", "text": "A"}, {"type": "image"}, {"type": "text", "text": "B"}]}),
    # globals
    ("{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d %I %p %j %y') }}", {}),
    ("{% set j = joiner(', ') %}{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %}", {}),
    ("{{ 'x' if bos_token is defined else 'no bos' }}{{ add_generation_prompt }}", {"add_generation_prompt": True}),
    # lexer corners: whitespace control, tag ends inside brackets and strings, line tracking
    ("{% set d = {'a': '}}', 'b': '%}'} %}{{ d.a }}{{ d.b }}{{ {'x': {'y': 1}}.x.y }}", {}),
    ("{{ '{{' }}{{ \"{% %}\" }}{# {{ ignored }} #}", {}),
    ("x  \n  {%- set a = 1 -%}  \n  y", {}),
    ("{% for i in [1, 2] -%}\n  {{ i }}\n{%- endfor %}", {}),
    ("{% for i in [1, 2] %}\n  {{ i }}\n{% endfor %}\nend", {}),
    ("  {% if true %}  x  {% endif %}  \n  {{ 'v' }}  {% if false %}{% else %}e{% endif %}\n", {}),
    ("\t{% if true %}\r\n\tx\n\t{% endif %}\n", {}),
    ("a{% if true %}\nb{% endif %}\n\nc", {}),
    ("{{ 1 }}\n{{ 2 }}\n\n{% if 1 %}{% endif %}\n", {}),
    ("a\r\nb\rc\n", {}),
    ("{{ 'x' }}\n", {}),
    ("{{ 'x' }}\n\n", {}),
    ("{%- if true -%}\n\n  A  \n\n{%- endif -%}\n\n", {}),
    ("{% macro m(a, b=a ~ '!') -%}\n  [{{ a }}|{{ b }}]\n{%- endmacro %}\n{{ m('x') }}\n{{ m('y', 'z') }}", {}),
    ("{{ 1 if true else 2 }}{{ 'a' ~ 'b' if false else 'c' ~ 'd' }}{{ not true or true }}{{ not (true or true) }}", {}),
    ("{{ x | default('a') | upper }}{{ 'abc' | replace('b', 'x') | upper }}{{ [1,2] | map('string') | join('-') }}", {}),
    ("{%- for m in messages if m.role != 'system' %}{{ loop.index }}{{ m.role[0] }}{% endfor %}", {"messages": M}),
    ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set sys = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set sys = 'default' %}{% endif %}{{ sys }}{% for m in loop_messages %}<{{ m.role }}>{% endfor %}", {"messages": M}),
    ("{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('alternate') }}{% endif %}{{ message.content }}{% endfor %}", {"messages": M[1:]}),
    ("{{ tools is none }}{{ tools is not none }}{% if tools %}T{% endif %}{{ documents is defined }}", {"tools": None, "documents": None}),
    ("{% set x = [1, 2, 3] %}{{ x[1:] | length }}{{ x | first }}{{ (x | reverse | list)[0] }}{{ x.index(2) }}{{ x.count(3) }}", {}),
    ("{{ '%.2f'|format(3.14159) }}|{{ '%5s|%-5s|' % ('a', 'b') }}|{{ '%d%%' % 50 }}|{{ '%(a)s-%(b)s' % {'a': 1, 'b': 2} }}", {}),
    ("{{ 10000000000000000 }} {{ 2 ** 62 }} {{ 1e22 }} {{ 123456789.123 }} {{ 1/3 }} {{ -1.5e-7 }} {{ 100.0 }} {{ 5e-324 }}", {}),
    ("{{ (1, 2) == [1, 2] }}{{ [1, 2] == [1, 2] }}{{ {'a': 1} == {'a': 1.0} }}{{ none == false }}{{ 0 == false }}{{ '1' == 1 }}", {}),
    ("{{ v.content[0]['text'] }}{{ v['tool_calls'][0].function.arguments.city }}{{ v.tool_calls|length }}", {"v": {"content": [{"type": "text", "text": "T"}], "tool_calls": [{"function": {"arguments": {"city": "P"}}}]}}),
    ("{% for k, v in d|dictsort %}{{ k }}{{ v }}{% endfor %}|{% for k, v in d.items() %}{{ k }}{% endfor %}|{{ d|length }}", {"d": {"b": 1, "a": 2, "c": 0}}),
    ("{{ 'abc' is string and 'abc' is not mapping }}{{ [] is sequence }}{{ {} is iterable }}{{ 1 is sameas 1 }}{{ x is undefined and y is not defined }}", {}),
    # found by random differential runs against Jinja2
    ("{{ d is lower }}{{ 1e3 is lower }}{{ 'Ab' is upper }}{{ 2 * [1] }}{{ 1 % -0.5 }}{{ -7.5 % 2 }}{{ ['😀', 'é', \"it's\"] }}{{ 'Straße'|upper }}{{ 'ß'.upper() }}", {"d": {"k": 1}}),
    ("{{ 2.5 is odd }}{{ 3.0 is odd }}{{ 4.0 is divisibleby 2 }}{{ (none)[1:] }}{{ '%s' % [] }}", {}),
    ("{{ x|int }}", {}),
    ("{{ '' % 2 }}", {}),
    ("{{ [] in {'a': 1} }}", {}),
    # errors (Jinja2 raises)
    ("{{ x.y }}", {}),
    ("{{ x() }}", {}),
    ("{{ x + 1 }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ raise_exception('bad role') }}", {}),
    ("{{ [1].append(2) }}", {}),
    ("{% for x in 5 %}{% endfor %}", {}),
    ("{{ range(200000)|length }}", {}),
    ("{{ none|tojson }}{{ x|tojson }}", {}),
    ("{% set a, b = [1] %}", {}),
    ("{{ 1|nosuchfilter }}", {}),
    ("{% set x = 1 %}{% set x.y = 2 %}", {}),
]

SYNTAX_ERRORS = [
    "{% if x %}no end",
    "{{ 1 + }}",
    "{% for x in %}{% endfor %}",
    "{% nosuchtag %}",
    "{{ 'unterminated }}",
    "{% endif %}",
    "{{ x ",
    "{# open comment",
]

out = []
for i, (src, variables) in enumerate(CASES):
    entry = {"template": src, "vars": variables}
    try:
        entry["expected"] = env.from_string(src).render(**variables)
    except Exception as e:
        entry["error"] = type(e).__name__ + ": " + str(e)
    out.append(entry)
for src in SYNTAX_ERRORS:
    try:
        env.from_string(src).render()
        raise SystemExit("expected a syntax error: " + src)
    except jinja2.exceptions.TemplateSyntaxError as e:
        out.append({"template": src, "vars": {}, "syntax_error": str(e), "line": e.lineno})
with open("jinja2-cases.json", "w", encoding="utf-8") as f:
    json.dump({"generator": "make_jinja2_cases.py", "jinja2": jinja2.__version__, "cases": out}, f, ensure_ascii=False, indent=1)
print(len(out), "cases")
