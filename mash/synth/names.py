"""Name lists for synthetic people, most common first (weights fall off Zipf-like)."""

FEMALE = """
olivia amelia isla ava mia ivy lily isabella rosie sophia grace freya willow florence emily
ella poppy evie elsie charlotte evelyn sienna sofia daisy phoebe sophie alice harper matilda
ruby emilia maya millie jessica ellie layla isabelle bonnie lucy chloe hannah amelie leah
olive eliza eva imogen jasmine molly arabella mila violet aria thea harriet esme maisie zara
ada erin scarlett holly lottie georgia nancy katie lola beatrice rose summer penelope megan
elizabeth emma lauren rebecca amy sarah laura jade chelsea natalie stacey kelly danielle
gemma samantha nicola rachel victoria catherine jennifer michelle claire louise helen joanne
kerry lisa donna tracey karen julie susan margaret patricia linda barbara mary kathleen jane
anne deborah shannon courtney bethany abigail kayleigh paige tia
""".split()
MALE = """
oliver noah george arthur muhammad leo harry oscar archie henry theodore freddie jack
charlie theo alfie jacob thomas finley arlo william lucas roman tommy isaac teddy alexander
luca edward james joshua albert mason reuben max ezra ethan elijah hudson samuel logan jude
sebastian adam harrison daniel rory louis benjamin hunter jaxon riley joseph toby caleb
david liam dylan michael tyler ryan kai callum connor jake luke kyle lewis nathan aaron ben
jordan matthew christopher andrew mark paul robert richard stephen peter john anthony steven
craig lee darren wayne gary dean shane scott jason carl neil simon ian kevin martin brian
keith barry terry colin graham philip alan raymond william
""".split()
SURNAMES = """
smith jones williams taylor brown davies evans wilson thomas johnson roberts robinson
thompson wright walker white edwards hughes green hall lewis harris clarke patel jackson
wood turner martin cooper hill ward morris moore clark lee king baker harrison morgan allen
james scott phillips watson davis parker price bennett young griffiths mitchell kelly cook
carter richardson bailey collins bell shaw murphy miller cox richards khan marshall anderson
simpson ellis adams singh begum wilkinson foster chapman powell webb rogers gray mason ali
hunt hussain campbell matthews owen palmer holmes mills barnes knight lloyd butler russell
barker fisher stevens jenkins murray dixon harvey graham pearson ahmed fletcher walsh kaur
gibson howard andrews stewart elliott reynolds saunders payne fox ford pearce day brooks
west lawrence cole atkinson bradley spencer gill dawson ball burton obrien watts rose booth
perry ryan grant wells armstrong francis rees hayes hart hudson newman barrett webster
hunter gregory carr lowe page marsh riley dennis farrell oconnor sutton mccarthy nicholson
holland smith-jones
""".split()
# UK postcode districts used for synthetic addresses (West Yorkshire, where the demo lives).
DISTRICTS = """
LS1 LS2 LS4 LS5 LS6 LS7 LS8 LS9 LS10 LS11 LS12 LS13 LS14 LS15 LS16 LS17 LS18 LS19 LS20 LS21
LS25 LS26 LS27 LS28 BD1 BD2 BD3 BD4 BD5 BD6 BD7 BD8 BD9 BD10 BD11 BD12 WF1 WF2 WF3 WF4 WF5
WF6 WF10 WF12 WF13 WF17 HX1 HX2 HX3 HD1 HD2 HD3 HD4 HD5
""".split()
STREET_NAMES = [
    "Church Road",
    "High Street",
    "Station Road",
    "Victoria Street",
    "Green Lane",
    "Manor Road",
    "Park Avenue",
    "Queen Street",
    "Mill Lane",
    "Chapel Street",
    "Kirkgate",
    "Albion Street",
    "Moor Road",
    "Beech Grove",
    "Oak Crescent",
    "Sycamore Close",
    "Hawthorn Drive",
    "Springfield Road",
    "Westfield Lane",
    "Cliffe Terrace",
]

# A long tail of rarer surnames, built from English place-name elements (Ackroyd, Holdsworth,
# Sutcliffe...): real surname frequencies have a long tail, and blocking sizes depend on it.
SURNAME_HEADS = """
ack ash aln bar bark black brad brig cart chad clay crow dal dun eld fair farn gar gold
green hal hard hol holds horn kirk lang ley lind long mar mid moor nor oak ros rush shaw
shep stan stock sut thorn tod wad wain whit wood work york ald bland brig crab
""".split()
SURNAME_TAILS = """
royd worth cliffe ley ton field by thwaite ham shaw well wood dale hurst croft gate bottom
hall lock bridge ford house
""".split()
RARE_SURNAMES = sorted({h + t for h in SURNAME_HEADS for t in SURNAME_TAILS})
