"""Examples the ml tests share."""

from ml.dataset import Example

# One or two posts of each label, in English and French: enough to fit, quick to embed.
SMALL_SET = [
    Example("What time is the first train to Lyon tomorrow?", "schedule", "en"),
    Example("A quelle heure part le dernier train pour Lille ?", "schedule", "fr"),
    Example("My flight has been delayed three hours, again", "delay", "en"),
    Example("RER B encore en retard de 40 minutes ce matin", "delay", "fr"),
    Example("You lost my suitcase and nobody answers the phone", "problem", "en"),
    Example("Toujours pas de remboursement pour mon billet annulé", "problem", "fr"),
    Example("Thanks to the crew, lovely flight!", "praise", "en"),
    Example("Merci au contrôleur, super sympa", "praise", "fr"),
    Example("Journalist here, can your press office comment on the strike?", "press", "en"),
    Example("Shares up 5% after the quarterly earnings report", "investor", "en"),
    Example("Any openings for train drivers? I would like to apply", "employee", "en"),
    Example("lol what a meme", "other", "en"),
]
