"""UK given-name nickname groups: Bill/William, Kate/Catherine, Peggy/Margaret...

Each group is named by its canonical (formal) name. A short name may belong to several
groups (Alex: Alexander and Alexandra); `groups` returns all of them. The table is data,
fixed in the code so that blocking keys derived from it are stable across processes.
"""

from __future__ import annotations

from functools import lru_cache

from rapidfuzz.distance import OSA

# canonical name: its nicknames and common spellings (already folded to lower case ASCII)
_GROUPS: dict[str, tuple[str, ...]] = {
    "william": ("bill", "billy", "will", "willy", "liam", "wills"),
    "robert": ("bob", "bobby", "rob", "robbie", "bert", "robby"),
    "richard": ("dick", "rick", "ricky", "rich", "richie"),
    "edward": ("ed", "eddie", "eddy", "ted", "teddy", "ned"),
    "james": ("jim", "jimmy", "jamie", "jimmie"),
    "john": ("jack", "johnny", "jon", "jonny"),
    "jonathan": ("jon", "jonny", "johnny", "nathan"),
    "thomas": ("tom", "tommy", "thom"),
    "michael": ("mike", "mikey", "mick", "micky", "mickey"),
    "christopher": ("chris", "kit", "topher"),
    "christian": ("chris",),
    "nicholas": ("nick", "nicky", "nico"),
    "anthony": ("tony", "ant", "anton"),
    "andrew": ("andy", "drew"),
    "alexander": ("alex", "alec", "alf", "sandy", "xander", "lex"),
    "alexandra": ("alex", "alexa", "sandra", "sasha", "lexi", "lexie"),
    "benjamin": ("ben", "benny", "benji"),
    "daniel": ("dan", "danny"),
    "danielle": ("dani", "ellie"),
    "joseph": ("joe", "joey", "jo"),
    "joshua": ("josh",),
    "matthew": ("matt", "matty"),
    "samuel": ("sam", "sammy"),
    "samantha": ("sam", "sammy", "sammie"),
    "stephen": ("steve", "stevie", "steven", "stephan"),
    "steven": ("steve", "stevie", "stephen"),
    "timothy": ("tim", "timmy"),
    "peter": ("pete",),
    "charles": ("charlie", "chas", "chuck", "chaz"),
    "frederick": ("fred", "freddie", "freddy", "fredrick"),
    "alfred": ("alf", "alfie", "fred", "freddie"),
    "theodore": ("theo", "ted", "teddy"),
    "henry": ("harry", "hal", "hank"),
    "harold": ("harry", "hal"),
    "gerald": ("gerry", "jerry"),
    "lawrence": ("larry", "laurie", "laurence"),
    "raymond": ("ray",),
    "kenneth": ("ken", "kenny"),
    "ronald": ("ron", "ronnie"),
    "donald": ("don", "donny"),
    "douglas": ("doug", "dougie"),
    "patrick": ("pat", "paddy"),
    "patricia": ("pat", "patsy", "trish", "tricia", "patty"),
    "terence": ("terry", "terrence"),
    "philip": ("phil", "pip", "phillip"),
    "nathaniel": ("nate", "nat", "nathan"),
    "zachary": ("zach", "zack", "zac"),
    "jacob": ("jake", "jakey"),
    "isaac": ("ike", "zac"),
    "oliver": ("ollie", "olly", "noll"),
    "archibald": ("archie", "archy"),
    "leonard": ("len", "lenny", "leo"),
    "sebastian": ("seb", "bastian"),
    "reuben": ("ruben", "rube"),
    "callum": ("cal", "calum", "kallum"),
    "muhammad": ("mohammed", "mohammad", "mohamed", "muhammed", "mo"),
    "catherine": ("kate", "katie", "cathy", "cath", "kath", "kathy", "kat", "kitty",
                  "katherine", "kathryn", "kathleen", "caitlin"),
    "katherine": ("kate", "katie", "kathy", "kath", "kat", "kitty", "catherine", "kathryn"),
    "elizabeth": ("liz", "lizzie", "lizzy", "beth", "betty", "bess", "betsy", "eliza", "libby",
                  "elsie", "lisa", "liza", "ellie"),
    "margaret": ("maggie", "meg", "peggy", "margo", "marge", "greta", "madge", "megan"),
    "jennifer": ("jen", "jenny", "jenni", "jennie"),
    "rebecca": ("becky", "becca", "bex"),
    "victoria": ("vicky", "vicki", "tori", "vic"),
    "charlotte": ("charlie", "lottie", "lotte", "lotty"),
    "abigail": ("abby", "abi", "gail", "abbie"),
    "deborah": ("debbie", "deb", "debra", "debs"),
    "susan": ("sue", "susie", "suzy", "suzanne"),
    "nicola": ("nicky", "nikki", "nic"),
    "jessica": ("jess", "jessie", "jessy"),
    "amelia": ("millie", "amy", "mia", "emmy"),
    "emily": ("emma", "em", "emmy", "millie"),
    "isabella": ("bella", "izzy", "isabel", "isobel", "izzie", "belle"),
    "isabelle": ("bella", "izzy", "isabel", "isobel", "belle"),
    "eleanor": ("ellie", "nell", "nellie", "elle", "nora"),
    "eliza": ("liza", "lizzie"),
    "florence": ("flo", "florrie", "flossie"),
    "matilda": ("tilly", "tilda", "mattie", "tillie"),
    "penelope": ("penny", "pen"),
    "dorothy": ("dot", "dotty", "dolly", "dora"),
    "christine": ("chris", "chrissy", "tina", "christina"),
    "christina": ("chris", "chrissy", "tina", "christine"),
    "josephine": ("jo", "josie", "jojo"),
    "joanne": ("jo", "joanna", "jo-anne"),
    "louise": ("lou", "lulu", "louisa"),
    "natalie": ("nat", "tali", "natasha"),
    "stephanie": ("steph", "stevie"),
    "kimberley": ("kim", "kimberly"),
    "gemma": ("jemma",),
    "sarah": ("sara", "sally", "sadie"),
    "mary": ("molly", "polly", "mae", "maria", "marie"),
    "anne": ("ann", "annie", "anna", "nancy", "hannah"),
    "helen": ("nell", "ellie", "helena"),
    "beatrice": ("bea", "trixie", "betty"),
    "georgina": ("georgie", "gina", "george"),
    "georgia": ("georgie",),
    "olivia": ("liv", "livvy", "ollie", "livia"),
    "sophia": ("sophie", "sofia", "sophy"),
    "phoebe": ("phebe",),
    "evelyn": ("evie", "eve", "lyn"),
    "imogen": ("immy", "imi"),
    "harriet": ("hattie", "hatty", "harry"),
    "theresa": ("tess", "tessa", "terri", "tracey", "teresa"),
    "tracey": ("tracy", "trace"),
    "kayleigh": ("kaylee", "kayley", "kaley", "kayla"),
    "danny": ("daniel", "danielle"),
}


def _build() -> dict[str, tuple[str, ...]]:
    index: dict[str, set[str]] = {}
    for canonical, variants in _GROUPS.items():
        for name in (canonical, *variants):
            index.setdefault(name.replace("-", ""), set()).add(canonical)
    return {name: tuple(sorted(groups)) for name, groups in index.items()}


_INDEX = _build()
# the table's names of three letters or more by first letter: the names a slip can be of
_SLIPPABLE: dict[str, list[str]] = {}
for _name in sorted(_INDEX):
    if len(_name) >= 3:
        _SLIPPABLE.setdefault(_name[0], []).append(_name)


@lru_cache(maxsize=100_000)  # bounded: queries bring names the records never had
def groups(given: str) -> tuple[str, ...]:
    """The canonical names whose group holds this (normalised, one-word) given name, sorted;
    the name itself when it is in no group. 'bill' -> ('william',); 'alex' -> both Alexes."""
    return _INDEX.get(given, (given,))


@lru_cache(maxsize=100_000)
def sharing_group(given: str) -> frozenset[str]:
    """Every name `same_group` holds to be a nickname of ``given`` (or ``given`` itself)."""
    out = {given}
    for canonical in groups(given):
        out.add(canonical.replace("-", ""))
        out.update(v.replace("-", "") for v in _GROUPS.get(canonical, ()))
    return frozenset(out)


def in_table(given: str) -> bool:
    """Whether this table knows the name (in a group, as a canonical name or a nickname)."""
    return given in _INDEX


@lru_cache(maxsize=100_000)  # bounded: queries bring names the records never had
def slip_mates(given: str) -> frozenset[str]:
    """The nicknames of the table's names that ``given`` is one keyboard slip from, when
    the table does not know ``given`` itself: 'oylivia' (Olivia, slipped) -> liv, livvy,
    ollie...; 'tdedy' (Teddy) -> theodore, edward, ted... Empty for a name the table knows
    ('barry' is not 'harry' slipped once it is known) and for one of under three letters.

    Only slips that keep the first letter count: people rarely get a name's first letter
    wrong, and 'barry', 'larry' and 'harry' are three names, not one."""
    if len(given) < 3 or given in _INDEX:
        return frozenset()
    out: set[str] = set()
    for name in _SLIPPABLE.get(given[0], ()):
        if OSA.distance(given, name, score_cutoff=1) <= 1:
            out |= sharing_group(name)
    return frozenset(out)


@lru_cache(maxsize=100_000)
def slip_sources(given: str) -> tuple[str, ...]:
    """The nicknames of ``given`` (itself included) that another name can be a slip of,
    for `slip_mates` the other way round: ``given in slip_mates(x)`` exactly when ``x``
    is a name the table does not know, one slip from one of these, its first letter kept."""
    return tuple(sorted(m for m in sharing_group(given) if len(m) >= 3 and m in _INDEX))


def slipped_nickname(a: str, b: str) -> bool:
    """One name is a nickname of the other with one keyboard slip in it ('oylivia' / 'liv',
    'theodore' / 'tdedy'): see `slip_mates`."""
    return b in slip_mates(a) or a in slip_mates(b)


def same_group(a: str, b: str) -> bool:
    """True when two given names are nicknames of one another (or equal)."""
    return a == b or bool(set(groups(a)) & set(groups(b)))


def variants(given: str) -> list[str]:
    """Every name in the groups of `given`, for reporting which name variants were searched."""
    found: set[str] = set()
    for canonical in groups(given):
        found.add(canonical)
        found.update(v.replace("-", "") for v in _GROUPS.get(canonical, ()))
    found.discard(given)
    return sorted(found)
