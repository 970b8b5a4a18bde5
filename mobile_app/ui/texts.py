"""Every text the app shows a parent, in one place: plain, kind, never a diagnosis."""

from __future__ import annotations

APP_TITLE = "Baby movement check"

WELCOME_TITLE = "Welcome"
WELCOME_BODY = (
    "This app looks at how your baby moves in a short video, the way specialists do in the "
    "General Movements Assessment.\n\n"
    "[b]What it does[/b]\n"
    "• It helps you notice early if a doctor should look at your baby's movements.\n"
    "• Everything happens on this phone: the video is turned into a stick figure here, and the "
    "check runs here.\n\n"
    "[b]What it does not do[/b]\n"
    "• It does not give a diagnosis. Only a doctor or a trained therapist can say what a result means.\n"
    "• It is not a replacement for your baby's check-ups.\n\n"
    "[b]Your data[/b]\n"
    "• Videos stay on this phone. The app keeps one only if you ask it to.\n"
    "• Nothing is sent anywhere unless you choose to share — and then only the stick-figure "
    "points and your baby's age in weeks, never the video, never a name or birth date.\n"
    "• You can delete everything at any time in Settings."
)
WELCOME_AGREE = "I understand: this is a screening aid, not a diagnosis."
TERMS_VERSION = "v1"

PROFILE_TITLE = "About your baby"
PROFILE_HELP = (
    "The check needs your baby's age counted from the due date (the \"corrected age\"). "
    "The app works it out from the birth date and how many weeks of pregnancy your baby was born at. "
    "Only the age in weeks is kept — never the birth date."
)
PROFILE_NICKNAME_HINT = "A nickname (stays on this phone)"
PROFILE_DATE_HINT = "Birth date, e.g. 2026-09-14"

GUIDE_TITLE = "How to record"
GUIDE_STEPS = (
    ("Awake and calm", "Record when your baby is awake, content and not crying — for example a while after a feed."),
    ("On the back", "Lay your baby on the back on a plain blanket, on the floor or a firm bed."),
    ("Little clothing", "A body suit or nappy only, so arms and legs can be seen. No blanket over the baby."),
    ("Nothing in the way", "No dummy (pacifier), no toys, no hands or faces in the picture."),
    ("Camera above", "Hold or rest the phone above the baby, so the whole body fits, head to feet."),
    ("Three minutes", "Record for about 3 minutes. Don't talk to or play with your baby meanwhile."),
)

CAPTURE_TITLE = "Record or choose a video"
CAPTURE_HELP = "Record your baby now, or choose a video you already made."
CAPTURE_NO_CAMERA = "No camera was found on this device. You can choose a video file instead."
CAPTURE_KEEP_VIDEO = "Keep the video on this phone (otherwise only the stick figure is kept)"

PROCESSING_TITLE = "Checking the video"
PROCESSING_WAIT = "This takes about as long as the video. You can put the phone down."
NOT_SCORABLE_TITLE = "This video could not be checked"
NOT_SCORABLE_HELP = "Nothing is wrong with your baby because of this — the video just needs to be recorded a little differently:"
ERROR_TITLE = "This file could not be used"
UNEXPECTED_ERROR = (
    "Something went wrong inside the app while checking this video. Your earlier results are safe. "
    "Please try again; if it happens again, try another video."
)

RESULT_TITLE = "Result"
SCREENING_AID = "This is a screening aid, not a diagnosis."
NEXT_STEP = "If you are worried about your baby, talk to your doctor or nurse — whatever the result."

HISTORY_TITLE = "Earlier results"
HISTORY_EMPTY = "No results yet."

SHARING_TITLE = "Sharing (optional)"
SHARING_HELP = (
    "You can help research by sharing your baby's stick-figure points. This is your choice; "
    "the app works the same without it. You can stop at any time: the server then erases "
    "everything it received under that consent."
)
SCOPE_TEXTS = {
    "research_keypoints": (
        "Research use of the movement points",
        "Researchers may keep the stick-figure points and the age in weeks to improve this check.",
    ),
    "anonymized_video": (
        "Make an anonymized video",
        "A server turns the points into a video of a made-up baby moving the same way, so experts can "
        "look at the movements without seeing your baby.",
    ),
}
GIVEN_BY_LABELS = {"parent": "Parent", "guardian": "Guardian", "legal_representative": "Legal representative"}

SETTINGS_TITLE = "Settings"
DELETE_ALL_CONFIRM = (
    "Delete all data on this phone: profiles, results, kept videos and consents? Any sharing "
    "consent is withdrawn first, which asks the server to erase what it received."
)
