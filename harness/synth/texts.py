"""Text templates: per class, carrier templates with slot fillers, and the openers of each language.

The templates of a language share words, so most words occur many times (the
word-discrimination task needs words seen at least twice).
"""

from __future__ import annotations

# Each class: (template, fillers) pairs; "{}" in the template takes one filler.
Templates = tuple[tuple[str, tuple[str, ...]], ...]

_TIMES = ("seven", "eleven", "half past six", "noon", "nine thirty", "eight in the morning")
_DAYS = ("today", "tomorrow", "tonight", "on monday", "on friday", "this weekend")
_CITIES = ("paris", "london", "boston", "austin", "berlin", "helsinki")
_PEOPLE = ("john", "mary", "my boss", "the team", "my mother", "anna")
_ROOMS = ("kitchen", "bedroom", "living room", "hallway", "bathroom")

EN_INTENTS: dict[str, Templates] = {
    "alarm_set": (("wake me up at {} please", _TIMES), ("set an alarm for {}", _DAYS),
                  ("please set my alarm for {} tomorrow", _TIMES)),
    "alarm_query": (("what alarms do i have set {}", _DAYS), ("is my alarm set for {}", _TIMES),
                    ("show me all my alarms for {}", _DAYS)),
    "weather_query": (("what is the weather like in {}", _CITIES), ("will it rain {} in paris", _DAYS),
                      ("do i need an umbrella {}", _DAYS)),
    "play_music": (("play some {} music for me", ("jazz", "rock", "pop", "classical", "country")),
                   ("put on a song by {} please", ("adele", "the beatles", "queen", "madonna")),
                   ("i want to hear {} music now", ("jazz", "rock", "pop", "soft"))),
    "calendar_set": (("add a meeting with {} to my calendar", _PEOPLE),
                     ("remind me about lunch with {} tomorrow", _PEOPLE),
                     ("schedule a call with {} at nine", _PEOPLE)),
    "iot_hue_lightoff": (("turn off the lights in the {}", _ROOMS), ("switch the {} lights off please", _ROOMS),
                         ("please make the {} dark now", _ROOMS)),
    "email_query": (("do i have any new emails from {}", _PEOPLE), ("check my inbox for mail from {}", _PEOPLE),
                    ("read me my latest email from {}", _PEOPLE)),
    "news_query": (("what is the latest news about {}", ("sports", "politics", "the election", "science")),
                   ("tell me the {} headlines please", ("sports", "business", "world", "local")),
                   ("is there any news from {} today", _CITIES)),
    "transport_ticket": (("book a train ticket to {}", _CITIES), ("buy me a ticket to {} for tomorrow", _CITIES),
                         ("i need a train to london {}", _DAYS)),
    "cooking_recipe": (("how do i make {} at home", ("pancakes", "pasta", "lasagna", "fried rice", "apple pie")),
                       ("give me a recipe for {}", ("pancakes", "pasta", "chicken soup", "banana bread")),
                       ("what do i need to cook {}", ("pasta", "rice", "chicken soup", "lasagna"))),
    "datetime_query": (("what time is it in {} right now", _CITIES), ("what is the date {}", _DAYS),
                       ("tell me the time in {} please", _CITIES)),
    "lists_createoradd": (("add {} to my shopping list", ("milk", "eggs", "bread", "rice", "apples")),
                          ("put {} on the list please", ("milk", "coffee", "bread", "pasta")),
                          ("create a new list for {}", ("the party", "the weekend", "my trip", "groceries"))),
}

FI_TOPICS: dict[str, Templates] = {
    "animal_friends": (("meidän {} rakastaa leikkiä pihalla", ("koira", "kissa", "kani", "marsu", "hevonen")),
                       ("vein {} eläinlääkärille eilen illalla", ("koiran", "kissan", "kanin", "marsun")),
                       ("lemmikkini {} aina kun tulen kotiin", ("hyppii", "kehrää", "haukkuu", "juoksee"))),
    "sports_moments": (("katsoin eilen {} televisiosta", ("jääkiekkoa", "jalkapalloa", "koripalloa", "hiihtoa")),
                       ("meidän joukkue voitti {} maalilla", ("kahdella", "kolmella", "yhdellä", "neljällä")),
                       ("juoksin pitkän lenkin {}", ("aamulla", "illalla", "sunnuntaina", "viime viikolla"))),
    "my_surroundings": (("asun pienessä {} lähellä keskustaa",
                         ("kaupungissa", "kylässä", "talossa", "asunnossa")),
                        ("meidän kadulla on {}",
                         ("uusi kauppa", "vanha kirjasto", "iso puisto", "pieni kahvila")),
                        ("naapurini {} joka päivä",
                         ("siivoaa pihaa", "ajaa pyörällä", "kävelee koiran kanssa"))),
    "summer": (("kesällä menemme aina {}", ("mökille", "rannalle", "saaristoon", "lappiin")),
               ("uimme järvessä {}", ("joka aamu", "juhannuksena", "heinäkuussa", "illalla")),
               ("kesä on paras aika {} ja levätä", ("grillata", "kalastaa", "uida", "pyöräillä"))),
    "the_cursed_covid": (("korona muutti {} täysin",
                          ("meidän arjen", "koulunkäynnin", "työnteon", "matkustamisen")),
                         ("olin karanteenissa {}", ("kaksi viikkoa", "viime keväänä", "koko kesän")),
                         ("käytimme maskia aina {}", ("kaupassa", "bussissa", "koulussa", "töissä"))),
    "media_skills": (("luen uutiset {} joka aamu", ("puhelimesta", "netistä", "lehdestä", "tabletilta")),
                     ("somessa leviää paljon {}", ("valeuutisia", "mainoksia", "huhuja", "videoita")),
                     ("tarkistan aina {} lähteen", ("uutisen", "kuvan", "videon", "väitteen"))),
    "rated_r": (("se elokuva oli aivan liian {}", ("väkivaltainen", "pelottava", "rivo", "verinen")),
                ("aikuisten {} ei sovi lapsille", ("sarja", "peli", "kirja", "elokuva")),
                ("kiroilin ääneen kun {}", ("auto hajosi", "kahvi loppui", "bussi myöhästyi"))),
    "nature": (("metsässä kasvaa paljon {}", ("mustikoita", "sieniä", "kuusia", "koivuja")),
               ("kävelimme {} koko päivän", ("metsässä", "tunturilla", "suolla", "rannalla")),
               ("syksyllä {} ja ilma viilenee", ("lehdet putoavat", "linnut lähtevät", "sataa paljon"))),
}

FR_REQUESTS: dict[str, Templates] = {
    "affil": (("je voudrais m'inscrire à la mutuelle {}", ("pour ma famille", "pour mon fils", "pour ma femme",
                                                          "dès le mois prochain")),
              ("comment ajouter {} à mon contrat", ("mon enfant", "ma fille", "mon conjoint", "mon mari")),
              ("je souhaite adhérer à votre {}", ("contrat santé", "offre famille", "complémentaire santé")),
              ("j'ai besoin d'une attestation d'affiliation {}", ("pour mon employeur", "pour ma fille",
                                                                 "pour la mairie")),
              ("je veux changer mon contrat {}",
               ("pour ma famille", "dès le mois prochain", "pour mon conjoint"))),
    "presta": (("je voudrais savoir quand je serai remboursé {}", ("pour mes lunettes", "pour le dentiste",
                                                                 "pour ma consultation")),
               ("est-ce que {} est pris en charge", ("le kiné", "l'ostéopathe", "la pharmacie", "l'hôpital")),
               ("je n'ai pas reçu le remboursement de {}", ("mes lunettes", "ma consultation", "mes médicaments",
                                                           "mon dentiste")),
               ("combien coûte {} avec ma mutuelle",
                ("une couronne", "une paire de lunettes", "une consultation")),
               ("je voudrais envoyer une facture {}", ("pour mes lunettes", "du dentiste", "de la pharmacie"))),
}


# Openers spoken before some sentences (as people do), shared by all classes of a language.
EN_OPENERS = ("hey", "please", "could you", "excuse me", "okay so", "i was wondering")
FI_OPENERS = ("no niin", "muuten", "tiedätkö", "minusta", "no mutta", "ihan totta")
FR_OPENERS = ("bonjour", "oui bonjour", "alors", "excusez-moi", "oui alors", "bonjour madame")
OPENER_PROBABILITY = 0.5
