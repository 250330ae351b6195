"""Labelled synthetic support mail for training tiny classifiers in tests (three categories, five each)."""

from __future__ import annotations

# Synthetic support mail: three categories, clearly worded, five each (the calibrated SVM needs three per label).
TRAINING = {
    "billing": [
        "I was charged twice on my invoice this month",
        "Please send me a copy of my invoice for March",
        "Why is my invoice higher than the price on your website",
        "The invoice shows a wrong VAT number, please correct the invoice",
        "Can I pay the invoice by bank transfer instead of card",
    ],
    "shipping": [
        "My parcel has not arrived yet, where is the delivery",
        "The delivery tracking number does not work for my parcel",
        "Can you ship the parcel to a different delivery address",
        "The courier left the parcel at the wrong door, delivery failed",
        "How long does delivery of a parcel to Norway take",
    ],
    "account": [
        "How do I change the password of my account",
        "Please delete my account profile and my password data",
        "I want to change the email address of my account profile",
        "My account profile picture does not update after I change the password",
        "How can I add a second user to my account profile",
    ],
}
