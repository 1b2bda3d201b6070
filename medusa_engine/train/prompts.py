"""The prompt set for self-distillation: >= 6000 user instructions in 8 categories, built from
templates x fill-in tables. Deterministic: the same code always yields the same prompts and ids.

Each template is a format string whose fields come from its own slots or from the shared TABLES.
A slot is a list of choices, or a function of a `random.Random` that returns a string or a dict
of several fields (for values that must agree, like the numbers of a word problem). Templates of
a category take turns, one new distinct prompt each, until the category has its quota.
None of these may match an MT-Bench question (tests/test_distill.py checks it).
"""
from __future__ import annotations

import random
import string
from dataclasses import dataclass

CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
PER_CATEGORY = 800


@dataclass(frozen=True)
class Prompt:
    id: str
    category: str
    text: str


def _t(s: str) -> list[str]:
    return [x.strip() for x in s.split("|") if x.strip()]


TABLES = {
    "name": _t("Alice|Ben|Chloe|Daniel|Emma|Farid|Grace|Hiro|Isabel|Jamal|Kira|Liam|Maya|Noah|Olga|Pedro|"
               "Quinn|Rosa|Sam|Tara|Umar|Vera|Wen|Yusuf|Zoe|Marco|Leila|Tomás|Anika|Oscar"),
    "city": _t("Lisbon|Toronto|Nairobi|Osaka|Denver|Lyon|Melbourne|Krakow|Austin|Bergen|Porto|Seoul|"
               "Edinburgh|Cape Town|Valencia|Montreal|Hanoi|Dublin|Santiago|Helsinki"),
    "lang": _t("Python|JavaScript|Java|C++|Go|Rust|TypeScript|C#"),
    "subject": _t("a lighthouse keeper|the first day of spring|a lost umbrella|learning to ride a bike|"
                  "a city at midnight|an old library|a cat and a crow who become friends|moving to a new country|"
                  "a rainy Monday morning|the ocean|a forgotten birthday|a robot learning to paint|"
                  "grandmother's kitchen|a long train journey|the last day of school|a mountain village|"
                  "the smell of coffee|a broken clock|the night sky|a street musician|autumn leaves|a tiny bakery|"
                  "a snowstorm|a message in a bottle|a garden after rain|a stray dog|an empty stadium|"
                  "a first job interview|a family road trip|a letter that arrived twenty years late"),
    "concept": _t("photosynthesis|gravity|electric current|the greenhouse effect|plate tectonics|DNA replication|"
                  "natural selection|entropy|the Doppler effect|osmosis|chemical bonding|the immune response|"
                  "black holes|radioactive decay|the water cycle|nuclear fusion|magnetism|refraction of light|"
                  "cellular respiration|the speed of sound|vaccination|catalysts|ocean tides|buoyancy|"
                  "the periodic table|climate feedback loops|friction|semiconductors|antibiotic resistance|"
                  "the Big Bang theory|binary numbers|public-key cryptography|neural networks|compression of data|"
                  "the carbon cycle|acids and bases|inertia|evaporation|the human nervous system|wind energy"),
    "person": _t("Marie Curie|Leonardo da Vinci|Nelson Mandela|Ada Lovelace|Confucius|Cleopatra|Galileo Galilei|"
                 "Mahatma Gandhi|Frida Kahlo|Simón Bolívar|Jane Austen|Ibn Battuta|Queen Elizabeth I|Karl Marx|"
                 "Hypatia|Genghis Khan|Harriet Tubman|Mozart|Murasaki Shikibu|Abraham Lincoln|Rosa Parks|"
                 "Charles Darwin|Catherine the Great|Avicenna|Martin Luther King Jr.|Vincent van Gogh|Plato|"
                 "Mansa Musa|Joan of Arc|Sigmund Freud"),
    "event": _t("the French Revolution|the fall of the Western Roman Empire|the First World War|the Industrial "
                "Revolution|the Protestant Reformation|the American Civil War|the Great Depression|the Renaissance|"
                "the collapse of the Soviet Union|the Meiji Restoration|the Black Death|the Cold War|"
                "the independence of India|the printing revolution|the Scientific Revolution|the Crusades|"
                "the abolition of slavery in the British Empire|the Russian Revolution of 1917|"
                "the unification of Germany|the fall of the Berlin Wall"),
    "idea": _t("utilitarianism|the social contract|existentialism|cognitive dissonance|opportunity cost|"
               "the tragedy of the commons|inflation|supply and demand|moral relativism|the placebo effect|"
               "confirmation bias|stoicism|soft power|the separation of powers|cultural relativism|"
               "the prisoner's dilemma|comparative advantage|free will|the trolley problem|nationalism|"
               "romanticism in art|postmodernism|federalism|the Socratic method|impressionism"),
    "country": _t("Japan|Morocco|Brazil|India|Germany|Mexico|Thailand|Italy|Egypt|Peru|Vietnam|Greece|Kenya|"
                  "South Korea|Turkey|Norway|Argentina|Indonesia"),
    "item": _t("notebooks|apples|pencils|movie tickets|coffee mugs|T-shirts|bus passes|plant pots|books|"
               "sandwiches|candles|tennis balls"),
}


def N(lo: int, hi: int):
    return lambda r: str(r.randint(lo, hi))


def pick(k: int, table: str, *fields: str):
    return lambda r: dict(zip(fields, r.sample(TABLES[table], k)))


def money(lo: int, hi: int):
    return lambda r: f"{r.randint(lo * 4, hi * 4) / 4:.2f}"


def _seq(r: random.Random) -> str:
    a, d, k = r.randint(1, 12), r.randint(2, 9), r.choice(["add", "mul", "square", "fib"])
    if k == "add":
        xs = [a + i * d for i in range(5)]
    elif k == "mul":
        xs = [a * (d // 2 + 1) ** i for i in range(5)]
    elif k == "square":
        xs = [(a + i) ** 2 for i in range(5)]
    else:
        xs = [a, d]
        while len(xs) < 6:
            xs.append(xs[-1] + xs[-2])
    return ", ".join(map(str, xs))


ODD_GROUPS = [_t("apple|banana|cherry|mango|pear|grape"), _t("violin|cello|flute|trumpet|harp|drum"),
              _t("Mars|Venus|Jupiter|Saturn|Mercury|Neptune"), _t("oak|maple|birch|pine|willow|cedar"),
              _t("hammer|wrench|screwdriver|saw|pliers|chisel"), _t("red|blue|green|yellow|purple|orange"),
              _t("eagle|sparrow|owl|parrot|penguin|robin"), _t("copper|iron|gold|silver|zinc|tin")]


def _odd(r: random.Random) -> dict:
    g1, g2 = r.sample(ODD_GROUPS, 2)
    words = r.sample(g1, 3) + [r.choice(g2)]
    r.shuffle(words)
    return {"words": ", ".join(words)}


def _numbers(r: random.Random) -> str:
    return ", ".join(str(r.randint(2, 99)) for _ in range(r.randint(5, 9)))


def _sum_diff(r: random.Random) -> dict:
    x = r.randint(10, 120)
    y = r.randint(1, x - 1)
    return {"s": str(x + y), "d": str(x - y)}


def _code(r: random.Random) -> dict:
    a, b, c = r.randint(1, 9), r.randint(2, 6), r.randint(3, 8)
    snippets = [f"xs = [{a}, {b}, {c}]\nys = [x * {b} for x in xs if x > {b - 1}]\nprint(sum(ys))",
                f"s = 'medusa'\nprint(s[{b - 2}:{c}].upper() * {b - 1})",
                f"d = {{}}\nfor i in range({c}):\n    d[i % {b}] = d.get(i % {b}, 0) + i\nprint(d)",
                f"n = {a + c}\ncount = 0\nwhile n > 1:\n    n = n // 2 if n % 2 == 0 else 3 * n + 1\n    count += 1\nprint(count)",
                f"def f(x, acc=[]):\n    acc.append(x)\n    return len(acc)\nprint([f(i) for i in range({b})])"]
    return {"snippet": r.choice(snippets)}


BUGGY = [
    "def average(xs):\n    return sum(xs) / len(xs) - 1",
    "def is_even(n):\n    return n % 2 == 1",
    "def reverse(s):\n    out = ''\n    for ch in s:\n        out = out + ch\n    return out",
    "def factorial(n):\n    result = 0\n    for i in range(1, n + 1):\n        result *= i\n    return result",
    "def last_item(xs):\n    return xs[len(xs)]",
    "def count_vowels(s):\n    return sum(1 for c in s if c in 'aeiou' and c in 'AEIOU')",
    "def max_of(xs):\n    best = 0\n    for x in xs:\n        if x > best:\n            best = x\n    return best",
    "def add_item(item, items=[]):\n    items.append(item)\n    return items",
    "def fizz(n):\n    if n % 3 == 0:\n        return 'Fizz'\n    elif n % 15 == 0:\n        return 'FizzBuzz'\n    return str(n)",
]

FORMATS = _t("as JSON|as a bullet list|as a Markdown table|in one line of CSV|as key: value pairs")
MONTHS = _t("January|February|March|April|May|June|July|August|September|October|November|December")


def _date(r: random.Random) -> str:
    return f"{r.choice(MONTHS)} {r.randint(1, 28)}, {r.randint(2019, 2026)}"


def _bio(r: random.Random) -> dict:
    name, city = r.choice(TABLES["name"]) + " " + r.choice(_t("Novak|Okafor|Lindqvist|Tanaka|Moreau|Silva|Khan|Rossi|Walsh|Kowalski")), r.choice(TABLES["city"])
    year = r.randint(1950, 2001)
    return {"passage": f"{name} was born in {city} in {year}. After studying "
                       f"{r.choice(_t('chemistry|economics|architecture|music|nursing|computer science|history'))} "
                       f"at university, {name.split()[0]} joined {r.choice(_t('Brightwave|Northstar Foods|Helix Labs|Orbit Media|Greenleaf Bank'))} "
                       f"as a {r.choice(_t('data analyst|project manager|designer|sales lead|researcher|accountant'))} in "
                       f"{year + r.randint(22, 30)} and now lives in {r.choice(TABLES['city'])} with {r.randint(1, 4)} cats."}


def _order(r: random.Random) -> dict:
    i1, i2 = r.sample(TABLES["item"], 2)
    return {"passage": f"Order #{r.randint(10000, 99999)} placed on {_date(r)}: {r.randint(1, 9)} x {i1} "
                       f"(${r.randint(2, 40)}.{r.choice(['00', '50', '99'])} each), {r.randint(1, 9)} x {i2} "
                       f"(${r.randint(2, 40)}.{r.choice(['00', '25', '49'])} each). Ship to {r.choice(TABLES['name'])} "
                       f"{r.choice(string.ascii_uppercase)}., {r.randint(2, 300)} Harbor Street, {r.choice(TABLES['city'])}. "
                       f"Delivery: {r.choice(['standard', 'express', 'next-day'])}."}


def _event(r: random.Random) -> dict:
    ev = r.choice(_t("Spring Book Fair|Community Coding Night|Jazz in the Park|Local Food Festival|"
                     "Climate Action Workshop|Photography Walk|Chess Open Tournament|Startup Pitch Evening"))
    return {"passage": f"Join us for the {ev} on {_date(r)} from {r.randint(1, 11)} {r.choice(['am', 'pm'])} at "
                       f"{r.choice(_t('the Old Town Hall|Riverside Pavilion|Central Library|Greenway Park|the Union Hotel'))}, "
                       f"{r.choice(TABLES['city'])}. Tickets are ${r.randint(0, 45)} (students half price). "
                       f"Register by {_date(r)} at events@{ev.split()[0].lower()}.org. Contact: {r.choice(TABLES['name'])}."}


def _job(r: random.Random) -> dict:
    lo = r.randint(40, 110)
    s1, s2 = r.sample(_t("SQL|Python|Excel|Figma|Kubernetes|customer service|accounting|React|Spanish|"
                         "project management|copywriting|machine learning"), 2)
    return {"passage": f"{r.choice(_t('Helix Labs|Brightwave|Northstar Foods|Orbit Media|Bluebird Logistics'))} is hiring "
                       f"a {r.choice(_t('junior analyst|marketing manager|software engineer|office coordinator|data scientist|UX designer'))} "
                       f"in {r.choice(TABLES['city'])}. Requirements: {r.randint(1, 8)} years of experience with {s1} "
                       f"and good knowledge of {s2}. Salary: ${lo}k-${lo + r.randint(10, 40)}k. "
                       f"{r.choice(['Remote work two days a week.', 'Fully on-site.', 'Hybrid schedule.'])} Apply by {_date(r)}."}


def _review(r: random.Random) -> dict:
    good = r.sample(_t("The battery lasts all day.|It is very light.|Setup took two minutes.|The sound is crisp.|"
                       "It looks great on my desk.|Customer support was quick to answer."), 2)
    bad = r.choice(_t("the charger broke after a week.|it gets hot quickly.|the app keeps crashing.|"
                      "it is overpriced for what it does.|the instructions were confusing."))
    prod = r.choice(_t("wireless earbuds|smart watch|coffee grinder|e-reader|robot vacuum|desk lamp|air fryer"))
    return {"passage": f"I bought the {prod} in {r.choice(MONTHS)}. {good[0]} {good[1]} However, {bad} "
                       f"Overall I'd give it {r.randint(1, 5)} out of 5 stars. - {r.choice(TABLES['name'])}"}


def _meeting(r: random.Random) -> dict:
    a, b, c = r.sample(TABLES["name"], 3)
    t1, t2 = r.sample(_t("send the budget draft|book the venue|update the website|call the supplier|"
                         "write the press release|review the contract|test the new app build|order new laptops"), 2)
    return {"passage": f"Meeting notes ({_date(r)}). Attendees: {a}, {b}, {c}. Decision: the launch moves to "
                       f"{r.choice(MONTHS)}. Action items: {a} will {t1} by Friday; {b} will {t2} by "
                       f"{r.choice(MONTHS)} {r.randint(1, 28)}. {c} will report on costs next meeting."}


PASSAGES = [_bio, _order, _event, _job, _review, _meeting]


def _passage(r: random.Random) -> dict:
    return r.choice(PASSAGES)(r)


TEMPLATES: dict[str, list[tuple[str, dict]]] = {
    "writing": [
        ("Write a {form} about {subject}.", {"form": _t("short poem|haiku|limerick|four-line rhyming poem|"
          "short story of under 300 words|diary entry|blog post introduction|fable with a moral|persuasive paragraph|"
          "bedtime story for a five-year-old|newspaper headline and lead paragraph|song chorus|two-sentence horror story|"
          "sonnet|descriptive paragraph")}),
        ("Draft {tone} email to {to} {why}.", {"tone": _t("a formal|a friendly|a brief|a polite|an apologetic|an enthusiastic"),
          "to": _t("my landlord|a new client|my team|my professor|a hiring manager|my neighbor|an online store's support team|a conference organizer"),
          "why": _t("asking to move our meeting to next week|about a delayed delivery|requesting a deadline extension|"
                    "thanking them for their help last week|inviting them to a small launch party|reporting a broken heater|"
                    "following up on a job application|announcing new office hours|asking for a reference letter|declining an invitation")}),
        ("Rewrite this sentence to sound {style}: \"{sentence}\"", {"style": _t("more formal|more casual|like Shakespeare|more concise|more persuasive|friendlier|like a pirate"),
          "sentence": _t("We can't come to the party because we are busy.|The meeting has been moved to Thursday.|"
                         "Please send me the report as soon as you can.|The new phone is fast but expensive.|"
                         "I think we should try a different approach.|The store will be closed for renovations.|"
                         "Our team won the game last night.|It is going to rain all weekend.|"
                         "You forgot to turn off the lights again.|The price of the tickets went up.")}),
        ("Give me {n} creative title ideas for {thing}.", {"n": _t("3|5|7|10"),
          "thing": _t("a blog about home cooking|a podcast about history|a mystery novel set in Venice|a gardening channel|"
                      "a science fiction short story|a newsletter for runners|a children's book about a brave turtle|"
                      "a talk about remote work|a travel vlog in {country}|a poetry collection about the sea")}),
        ("Write the opening paragraph of a {genre} story in which {premise}.", {"genre": _t("mystery|science fiction|fantasy|romance|comedy|thriller|historical|adventure"),
          "premise": _t("a librarian finds a map inside a returned book|the sun fails to rise one morning|"
                        "two rivals are stuck in an elevator|a child can hear what plants think|"
                        "a town's clocks all stop at 3:17|a chef loses her sense of taste|"
                        "a letter arrives addressed to someone who died long ago|a robot applies for a job as a gardener")}),
        ("Write a short {platform} post announcing {news}.", {"platform": _t("LinkedIn|Instagram|Twitter/X|Facebook|company blog"),
          "news": _t("the opening of a new café|a charity run next month|our app's new dark mode|a promotion at work|"
                     "a book club's first meeting|a summer sale|a volunteer beach clean-up|the adoption of a rescue dog")}),
        ("Proofread and correct the grammar of this text: \"{bad}\"", {"bad": _t(
            "Me and him goes to the store yesterday.|Their going to be late for they're flight.|"
            "She don't like apples, she prefer oranges.|The informations you gave was very helpful.|"
            "Each of the students have their own books.|Between you and I, the plan are not good.|"
            "I could of went to the concert if I had knew.|The team are winning there games lately.|"
            "Its a nice day, lets go to a park and eats lunch.|He runned fast then everyone else.")}),
        ("Write a {len} product description for {product}.", {"len": _t("short|50-word|catchy|detailed"),
          "product": _t("a reusable water bottle|noise-cancelling headphones|a handmade wool scarf|a standing desk|"
                        "an indoor herb garden kit|a solar phone charger|a board game for families|a vintage bicycle")}),
    ],
    "roleplay": [
        ("You are {role}. {ask}", {"role": _t("a friendly tour guide in Rome|a medieval blacksmith|a pirate captain|"
          "a detective in 1920s London|a barista at a busy café|a personal fitness trainer|a wise old wizard|"
          "a spaceship's onboard computer|a museum curator|a park ranger at Yellowstone|a chef at an Italian restaurant|"
          "a career counselor|a kindergarten teacher|a radio news anchor|a football commentator|a small-town librarian|"
          "a Victorian butler|an astronaut on the International Space Station|a game show host|a dragon guarding its treasure|"
          "a time traveler from the year 3000|a lighthouse keeper|a nervous first-time stand-up comedian|a retired sea captain"),
          "ask": _t("Introduce yourself and describe a typical day.|A visitor asks what to do first. Respond in character.|"
                    "Tell me about the biggest challenge you faced this week.|Greet a new customer and ask how you can help.|"
                    "Explain your job to a curious ten-year-old.|Describe what you can see around you right now.|"
                    "Give me three tips from your experience.|Someone is rude to you. How do you respond?|"
                    "Tell a short story about a memorable day.|Write a short note to whoever replaces you tomorrow.")}),
        ("Act as {advisor}. My question: {q}", {"advisor": _t("a patient math tutor|a nutritionist|a personal finance advisor|"
          "a Spanish teacher|an interior designer|a dog trainer|a gardening expert|a study coach|a running coach|a chess coach"),
          "q": _t("how should I get started?|what is the most common beginner mistake?|how can I stay motivated?|"
                  "can you give me a simple plan for the next four weeks?|what should I do when I feel stuck?|"
                  "what do I need to buy, if anything?")}),
        ("Pretend you are {person} visiting the present day. What do you think of {modern}?", {"modern": _t(
            "smartphones|social media|airplanes|supermarkets|video games|electric cars|the internet|fast food|"
            "space travel|modern medicine|online shopping|streaming music")}),
        ("Stay in character as {creature} and tell me about {topic}.", {"creature": _t("a cat who thinks it owns the house|"
          "a retired superhero|a ghost in an old castle|a talking houseplant|a grumpy old lighthouse|a sentient vending machine|"
          "a very polite alien tourist|a squirrel planning for winter|a knight who is afraid of horses|a cloud drifting over {city}"),
          "topic": _t("your morning routine|the best day of your life|your biggest fear|what makes you happy|"
                      "your opinion of humans|a secret nobody knows|your plans for tomorrow")}),
        ("Let's role-play. You are {interviewer} and I am {me}. Start the conversation.", {"interviewer": _t(
            "a job interviewer at a tech company|a hotel receptionist|a doctor at a check-up|a police officer at a traffic stop|"
            "a journalist|a customs officer at the airport|a real estate agent|a car salesperson"),
          "me": _t("a nervous candidate|a tourist who lost a passport|a customer with a complaint|a first-time visitor|"
                   "someone who only speaks a little English")}),
        ("Write a short dialogue between {person} and {person2} meeting for the first time.", {"person2": _t(
            "a modern teenager|a robot from the future|an astronaut|a chef|a street artist|a software engineer")}),
    ],
    "reasoning": [
        ("{a} is {cmp}er than {b}, and {c} is {cmp}er than {a}. Who is the {cmp}est of the three? Explain.",
         {"abc": pick(3, "name", "a", "b", "c"), "cmp": _t("tall|old|fast|young|short|strong")}),
        ("All {x} are {y}, and some {y} are {z}. Can we conclude that some {x} are {z}? Explain your reasoning.",
         {"xyz": lambda r: dict(zip("xyz", r.sample(_t("artists|bakers|cyclists|doctors|gardeners|musicians|"
                                                       "pilots|runners|students|teachers|writers|swimmers"), 3)))}),
        ("What is the next number in the sequence {seq}? Explain the pattern.", {"seq": _seq}),
        ("Find the odd one out among these words and explain why: {words}.", {"w": _odd}),
        ("If today is {day}, what day of the week will it be in {n} days? Show your reasoning.",
         {"day": _t("Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"), "n": N(3, 400)}),
        ("{a} is facing {dir}. {a} turns {t1}, then turns {t2}. Which direction is {a} facing now?",
         {"a": TABLES["name"], "dir": _t("north|south|east|west"),
          "t1": _t("left|right|around|90 degrees to the right"), "t2": _t("left|right|around|left again")}),
        ("{a} is the {r1} of {b}, and {b} is the {r2} of {c}. How is {a} related to {c}?",
         {"abc": pick(3, "name", "a", "b", "c"), "r1": _t("parent|sibling|child|grandparent|only sibling"),
          "r2": _t("parent|sibling|child|cousin|grandparent")}),
        ("Give some plausible explanations for this situation: {sit}", {"sit": _t(
            "every plant on one side of a street died, but the other side is fine.|a shop sells more umbrellas on sunny days.|"
            "a student scored better after sleeping less.|the office printer only jams on Mondays.|"
            "a popular restaurant suddenly has no customers.|a dog barks only when one particular car passes.|"
            "a town's water bill doubled in one month.|ice cream sales and sunburns rise at the same time.")}),
        ("In a race, {a} finished ahead of {b} but behind {c}. {d} finished right after {b}. Who came {place}?",
         {"abcd": pick(4, "name", "a", "b", "c", "d"), "place": _t("first|second|third|last")}),
        ("Is this argument valid? \"{arg}\" Explain why or why not.", {"arg": _t(
            "If it rains, the street gets wet. The street is wet. So it rained.|"
            "All mammals breathe air. Whales are mammals. So whales breathe air.|"
            "Some birds cannot fly. Penguins are birds. So penguins cannot fly.|"
            "If I study, I pass. I did not study. So I will fail.|"
            "Every square is a rectangle. This shape is not a rectangle. So it is not a square.|"
            "Most people like music. Sam is a person. So Sam likes music.")}),
        ("{a} always tells the truth and {b} always lies. One of them says \"{claim}\" Who said it, and is it true?",
         {"ab": pick(2, "name", "a", "b"), "claim": _t("I am the liar.|We both tell the truth.|At least one of us lies.|"
                                                        "The other one is honest.|I never lie.")}),
        ("A box has {x} red socks and {y} blue socks. In the dark, how many socks must you take to be sure of a matching pair? Explain.",
         {"x": N(2, 20), "y": N(2, 20)}),
    ],
    "math": [
        ("Solve for x: {a}x + {b} = {c}. Show each step.", {"a": N(2, 15), "b": N(1, 60), "c": N(61, 300)}),
        ("{name} buys {n} {item} at ${p} each and {m} {item2} at ${q} each. How much does {name} spend in total?",
         {"n": N(2, 12), "m": N(2, 9), "p": money(1, 30), "q": money(1, 20), "item2": TABLES["item"]}),
        ("A train travels {d} km in {t} hours. What is its average speed, and how long would it take to cover {d2} km at that speed?",
         {"d": N(60, 900), "t": N(2, 9), "d2": N(100, 1200)}),
        ("What is {p}% of {n}? Explain how you calculate it.", {"p": N(3, 95), "n": N(20, 2000)}),
        ("A rectangle is {l} cm long and {w} cm wide. Find its area and its perimeter.", {"l": N(3, 60), "w": N(2, 40)}),
        ("A circle has a radius of {r} cm. Find its area and circumference, using pi = 3.14.", {"r": N(2, 50)}),
        ("Find the mean, the median and the range of these numbers: {nums}.", {"nums": _numbers}),
        ("A bag holds {r} red, {g} green and {b} blue marbles. If one is drawn at random, what is the probability that it is {c}?",
         {"r": N(1, 15), "g": N(1, 15), "b": N(1, 15), "c": _t("red|green|blue|not blue|red or green")}),
        ("{name} saves ${s} every week. How many weeks does it take to save ${goal}? Explain step by step.",
         {"s": N(5, 80), "goal": N(100, 3000)}),
        ("A jacket costs ${p}. It is on sale for {d}% off, and then a {t}% sales tax is added. What is the final price?",
         {"p": N(20, 400), "d": N(5, 60), "t": N(3, 12)}),
        ("What is the simple interest on ${P} at {r}% per year for {t} years? What is the total amount?",
         {"P": N(200, 20000), "r": N(1, 12), "t": N(1, 10)}),
        ("A recipe uses {a} cups of flour for {s} servings. How much flour is needed for {s2} servings?",
         {"a": N(1, 6), "s": N(2, 8), "s2": N(3, 40)}),
        ("Compute g({x}) for g(x) = {a}x^2 + {b}x - {c}.", {"x": N(-5, 9), "a": N(1, 7), "b": N(1, 12), "c": N(1, 30)}),
        ("Find the greatest common divisor and the least common multiple of {a} and {b}.", {"a": N(6, 180), "b": N(6, 180)}),
        ("One pipe fills a tank in {a} hours and another fills it in {b} hours. How long do they take together?",
         {"a": N(2, 12), "b": N(2, 15)}),
        ("The sum of two numbers is {s} and their difference is {d}. What are the numbers?", {"sd": _sum_diff}),
        ("{a} is {x} years old, and {b} is {k} times as old. How old will {b} be when {a} turns {y}?",
         {"ab": pick(2, "name", "a", "b"), "x": N(2, 15), "k": _t("two|three|four"), "y": N(16, 40)}),
        ("A car uses {l} liters of fuel per 100 km. Fuel costs ${c} per liter. What does a {d} km trip cost?",
         {"l": N(4, 12), "c": money(1, 3), "d": N(30, 1500)}),
    ],
    "coding": [
        ("Write a {lang} function that {task}.", {"task": _t("reverses a string|checks whether a number is prime|"
          "returns the n-th Fibonacci number iteratively|removes duplicates from a list while keeping order|counts word "
          "frequencies in a text|checks whether a string is a palindrome|merges two sorted arrays|flattens a nested list|"
          "converts Celsius to Fahrenheit|finds the second largest number in an array|validates an email address|"
          "computes the factorial of n|rotates an array by k positions|groups strings that are anagrams|"
          "returns the most frequent character in a string|implements binary search|checks balanced parentheses|"
          "converts a Roman numeral to an integer|transposes a matrix|computes a running average|"
          "splits a list into chunks of size n|capitalizes the first letter of every word|sums the digits of a number|"
          "finds all pairs in an array that add up to a target|computes the Levenshtein distance")}),
        ("Explain {c} in programming, with a short {lang} example.", {"c": _t("recursion|closures|immutability|"
          "polymorphism|exceptions|generics|iterators|dependency injection|memoization|concurrency|interfaces|"
          "pass-by-value versus pass-by-reference|hash maps|unit testing|asynchronous code|operator overloading")}),
        ("How do I {howto} in {lang}?", {"howto": _t("read a file line by line|sort a list of records by a field|"
          "parse a JSON string|handle errors|format a date|define a class with a constructor|iterate over a map|"
          "make an HTTP GET request|measure how long a function takes|read command-line arguments|write a unit test|"
          "convert a string to an integer safely")}),
        ("Write a SQL query that {sql}.", {"sql": _t("lists the ten most recent orders from an orders table|"
          "counts customers per country|finds employees who earn more than their manager|returns the average price per "
          "product category|finds duplicate email addresses in a users table|lists products that were never ordered|"
          "computes total sales per month in 2024|deletes sessions older than 30 days|finds the second highest salary|"
          "joins orders with customers and shows each customer's total spend")}),
        ("What does this Python code print? Explain.\n```python\n{snippet}\n```", {"s": _code}),
        ("Find and fix the bug in this Python function:\n```python\n{buggy}\n```", {"buggy": BUGGY}),
        ("Write a regular expression that matches {pat}, and explain each part.", {"pat": _t(
            "a US ZIP code|a date in YYYY-MM-DD format|a hex color code|an IPv4 address|a time like 14:05|"
            "a word that starts with a capital letter|a price like $12.99|a simple email address")}),
        ("Write a shell command that {sh}.", {"sh": _t("finds all .log files larger than 10 MB|counts the lines in every "
          ".py file in a folder|renames all .jpeg files to .jpg|shows the 5 largest directories|replaces 'foo' with 'bar' in "
          "all text files|lists the processes using the most memory|compresses a folder into a tar.gz archive")}),
        ("What is the time complexity of {algo}? Explain briefly.", {"algo": _t("binary search|bubble sort|merge sort|"
          "quicksort in the worst case|inserting into a hash table|breadth-first search on a graph|"
          "looking up a key in a balanced binary search tree|computing Fibonacci numbers with naive recursion")}),
        ("Write unit tests in {lang} for a function that {task}.", {"task": _t("adds two numbers|reverses a string|"
          "checks if a year is a leap year|parses a date string|computes a shopping cart total|validates a password|"
          "converts Celsius to Fahrenheit|finds the maximum of a list|slugifies a title|counts vowels in a word")}),
        ("Explain the difference between {pair}.", {"pair": _t("a list and a tuple in Python|== and === in JavaScript|"
          "an abstract class and an interface in Java|the stack and the heap|a process and a thread|git merge and git rebase|"
          "SQL and NoSQL databases|compiled and interpreted languages|TCP and UDP|HTTP GET and POST|a shallow copy and a "
          "deep copy|let, const and var in JavaScript")}),
        ("Write a small {lang} program that {prog}.", {"prog": _t("simulates rolling two dice 1000 times and prints the "
          "frequencies|prints a multiplication table up to 10|asks for a number and says if it is even or odd|"
          "implements a simple to-do list in memory|plays rock-paper-scissors against the computer|"
          "converts a number of seconds into hours, minutes and seconds")}),
    ],
    "extraction": [
        ("Extract {fields} from the text below {fmt}.\n\n{passage}", {"p": _passage,
          "fields": _t("all names, dates and amounts|every number and what it refers to|the key facts|all the places mentioned|"
                       "the people and their roles"), "fmt": FORMATS}),
        ("{passage}\n\nFrom the text above, pull out the main fields {fmt}.", {"p": _passage, "fmt": FORMATS}),
        ("Read this:\n\"{passage}\"\nSummarize it in one sentence, then list the dates it mentions.", {"p": _passage}),
        ("Here is a short text:\n{passage}\n\nAnswer briefly: {q}", {"p": _passage, "q": _t(
            "Who is mentioned, and what is each person's role?|What is the single most important deadline or date?|"
            "What numbers appear, and what do they mean?|What action, if any, is the reader asked to take?")}),
        ("Classify the sentiment of this review as positive, negative or mixed, and list the reasons given {fmt}.\n\n{passage}",
         {"p": _review, "fmt": FORMATS}),
        ("List every action item in these notes as a table with columns owner, task and due date.\n\n{passage}", {"p": _meeting}),
        ("From this job ad, extract the job title, location, required skills, salary range and deadline {fmt}.\n\n{passage}",
         {"p": _job, "fmt": FORMATS}),
        ("Extract each item, its quantity and unit price from this order, and compute the order total.\n\n{passage}", {"p": _order}),
    ],
    "stem": [
        ("Explain {concept} in simple terms.", {}),
        ("Explain {concept} to {aud}.", {"aud": _t("a ten-year-old|a high school student|a college freshman|my grandmother|"
                                                     "someone who loves cooking|a football fan")}),
        ("Give three real-world applications of {concept}.", {}),
        ("What is a common misconception about {concept}, and what is the truth?", {}),
        ("What is the difference between {pair}?", {"pair": _t("weather and climate|mass and weight|speed and velocity|"
          "a virus and a bacterium|mitosis and meiosis|an atom and a molecule|AC and DC current|heat and temperature|"
          "an element and a compound|RAM and storage|a comet and an asteroid|genotype and phenotype|"
          "nuclear fission and fusion|renewable and non-renewable energy|a hypothesis and a theory|"
          "series and parallel circuits|DNA and RNA|precision and accuracy")}),
        ("How does {device} work?", {"device": _t("a refrigerator|a microwave oven|GPS|a solar panel|a touchscreen|"
          "a jet engine|noise-cancelling headphones|a vaccine|an MRI scanner|Wi-Fi|a heat pump|a lithium-ion battery|"
          "a rainbow|a hydroelectric dam|a thermometer|a 3D printer|an electric motor|a camera lens")}),
        ("A ball is dropped from a height of {h} meters. Ignoring air resistance, how long does it take to reach the "
         "ground, and how fast is it going? Use g = 9.8 m/s^2.", {"h": N(2, 200)}),
        ("A {m} kg cart accelerates at {a} m/s^2. What net force acts on it, and how far does it move from rest in {t} seconds?",
         {"m": N(1, 500), "a": N(1, 12), "t": N(2, 20)}),
        ("What is the kinetic energy of a {m} kg object moving at {v} m/s? Show the formula.", {"m": N(1, 2000), "v": N(1, 40)}),
        ("A heater draws {i} A from a {v} V supply. What is its power, and how much energy does it use in {h} hours?",
         {"i": N(1, 15), "v": _t("12|110|120|230|240"), "h": N(1, 10)}),
        ("What would happen if {hyp}? Explain the science.", {"hyp": _t("the Moon disappeared|Earth stopped rotating|"
          "all insects vanished|the oceans were fresh water|humans could photosynthesize|gravity were twice as strong|"
          "the ozone layer vanished|water did not expand when it froze|Earth had no magnetic field|"
          "the Sun were half as bright")}),
        ("Describe an experiment a student could do at home to demonstrate {concept}.", {}),
        ("Write a short quiz of three questions, with answers, about {concept}.", {}),
        ("List five key facts about {concept}.", {}),
    ],
    "humanities": [
        ("Summarize the main causes of {event}.", {}),
        ("What were the main consequences of {event} for {aspect}?", {"aspect": _t(
            "ordinary people|trade|art and culture|politics|women|science and technology")}),
        ("Who was {person}, and why are they remembered today?", {}),
        ("Describe a typical day in the life of {person}, based on what historians know.", {}),
        ("What is {idea}? Give an everyday example.", {}),
        ("What are the strongest arguments for and against {idea}?", {}),
        ("Compare {pair}.", {"pair": _t("Stoicism and Epicureanism|capitalism and socialism|Renaissance and Baroque art|"
          "Athenian democracy and modern democracy|Buddhism and Stoicism|the Roman Republic and the Roman Empire|"
          "realism and idealism in international relations|Greek and Norse mythology|Romantic and Classical music|"
          "Plato and Aristotle|Keynesian and classical economics|the Iliad and the Odyssey")}),
        ("I'm traveling to {country} soon. What local customs and manners should I know about?", {}),
        ("Recommend {n} classic novels for someone interested in {theme}, with one sentence about each.",
         {"n": _t("three|four|five"), "theme": _t("war and peace|coming of age|justice|love and loss|travel|"
                                                   "social class|science and ethics|family")}),
        ("Write an essay outline on the question: {q}", {"q": _t("Does technology make us lonelier?|Should museums "
          "return artifacts to their countries of origin?|Is history written by the winners?|Can art change society?|"
          "Should voting be compulsory?|What makes a leader great?|Is it ever right to break the law?|"
          "Has globalization helped or harmed local cultures?")}),
        ("How did {person} influence {field}?", {"field": _t("later generations|the world we live in today|their own society|later artists and thinkers")}),
        ("How is {idea} relevant to {domain} today?", {"domain": _t("politics|business|education|personal life|"
          "social media|medicine")}),
        ("Write a {n}-sentence biography of {person}.", {"n": _t("three|five|ten")}),
        ("What might have happened if {event} had never taken place?", {}),
        ("What are the main themes of {book}?", {"book": _t("Pride and Prejudice|War and Peace|One Hundred Years of Solitude|"
          "Things Fall Apart|The Odyssey|Hamlet|Don Quixote|1984|The Tale of Genji|Crime and Punishment|Frankenstein|"
          "The Great Gatsby|Antigone|The Little Prince|Moby-Dick|Beloved")}),
        ("Describe the {form} of {era}.", {"form": _t("art|music|literature|architecture"), "era": _t("ancient Egypt|"
          "classical Greece|the Tang dynasty|the Italian Renaissance|the Mughal Empire|the Baroque period|the Edo period "
          "in Japan|the Victorian era|the Harlem Renaissance|the 1960s")}),
        ("Which {n} facts about the history of {country} should every visitor know?", {"n": _t("three|five|seven")}),
        ("What role did {thing} play in {event}?", {"thing": _t("religion|trade|technology|propaganda|geography|"
                                                                 "economic hardship|new ideas")}),
    ],
}


def _fill(template: str, slots: dict, r: random.Random) -> str:
    values: dict = {}
    for key, spec in slots.items():
        v = spec(r) if callable(spec) else r.choice(spec)
        values.update(v if isinstance(v, dict) else {key: v})
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    for f in fields:
        if f not in values:
            values[f] = r.choice(TABLES[f])
    text = template.format(**values)
    # a fill-in may itself contain a field (e.g. "a travel vlog in {country}")
    return _fill(text, {}, r) if "{" in text and "```" not in text else text


def build_prompts(per_category: int = PER_CATEGORY) -> list[Prompt]:
    """All prompts, `per_category` of each category, ids `<category>-<index>`."""
    out: list[Prompt] = []
    seen: set[str] = set()
    for cat in CATEGORIES:
        r = random.Random(f"medusa-lens/{cat}")
        live = list(TEMPLATES[cat])
        texts: list[str] = []
        while len(texts) < per_category and live:
            for tpl in list(live):
                for _ in range(40):  # a few tries for a new distinct text, else the template is spent
                    text = _fill(*tpl, r)
                    if text not in seen:
                        seen.add(text)
                        texts.append(text)
                        break
                else:
                    live.remove(tpl)
                if len(texts) >= per_category:
                    break
        out += [Prompt(id=f"{cat}-{i:04d}", category=cat, text=t) for i, t in enumerate(texts)]
    return out


def draw_distinct(name: str, draw, taken: set[str], per_category: int) -> list[Prompt]:
    """`per_category` prompts of each category from `draw(category, rng)` (seeded by `name`), ids
    `<name>-<category>-<index>`, none in `taken` (which grows with them); a category that runs out of new
    texts after `per_category * 50` draws keeps what it has."""
    out: list[Prompt] = []
    for cat in CATEGORIES:
        r = random.Random(f"medusa-lens/{name}/{cat}")
        texts: list[str] = []
        for _ in range(per_category * 50):
            if len(texts) == per_category:
                break
            text = draw(cat, r)
            if text not in taken:
                taken.add(text)
                texts.append(text)
        out += [Prompt(id=f"{name}-{cat}-{i:04d}", category=cat, text=t) for i, t in enumerate(texts)]
    return out
