"""Program-interest taxonomy, keyed to CIP 2020 (Classification of Instructional Programs).

Each interest maps to one six-digit CIP code and its official title; the slugs are the
identifiers used by campaigns, ads and lead forms.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Interest:
    slug: str
    name: str
    cip_code: str


_ENTRIES: tuple[tuple[str, str, str], ...] = (
    # Computer and information sciences
    ("computer-science", "Computer Science", "11.0701"),
    ("information-technology", "Information Technology", "11.0103"),
    ("computer-programming", "Computer Programming/Programmer, General", "11.0201"),
    ("web-development", "Web Page, Digital/Multimedia and Information Resources Design", "11.0801"),
    ("database-administration", "Data Modeling/Warehousing and Database Administration", "11.0802"),
    ("computer-networking", "Computer Systems Networking and Telecommunications", "11.0901"),
    ("network-administration", "Network and System Administration/Administrator", "11.1001"),
    ("cybersecurity", "Computer and Information Systems Security/Auditing/Information Assurance", "11.1003"),
    # Personal and culinary services
    ("cosmetology", "Cosmetology/Cosmetologist, General", "12.0401"),
    ("culinary-arts", "Culinary Arts/Chef Training", "12.0503"),
    # Education
    ("curriculum-instruction", "Curriculum and Instruction", "13.0301"),
    ("educational-leadership", "Educational Leadership and Administration, General", "13.0401"),
    ("instructional-technology", "Educational/Instructional Technology", "13.0501"),
    ("special-education", "Special Education and Teaching, General", "13.1001"),
    ("elementary-education", "Elementary Education and Teaching", "13.1202"),
    ("secondary-education", "Secondary Education and Teaching", "13.1205"),
    ("early-childhood-education", "Early Childhood Education and Teaching", "13.1210"),
    # Legal
    ("paralegal", "Legal Assistant/Paralegal", "22.0302"),
    # Liberal arts
    ("liberal-studies", "Liberal Arts and Sciences/Liberal Studies", "24.0101"),
    # Data science and analytics
    ("data-science", "Data Science, General", "30.7001"),
    ("data-analytics", "Data Analytics, General", "30.7101"),
    # Psychology
    ("psychology", "Psychology, General", "42.0101"),
    ("counseling-psychology", "Counseling Psychology", "42.2803"),
    # Homeland security, law enforcement and firefighting
    ("corrections", "Corrections", "43.0102"),
    ("criminal-justice", "Criminal Justice/Safety Studies", "43.0104"),
    ("forensic-science", "Forensic Science and Technology", "43.0106"),
    ("fire-science", "Fire Science/Fire-fighting", "43.0203"),
    ("homeland-security", "Homeland Security", "43.0301"),
    ("emergency-management", "Crisis/Emergency/Disaster Management", "43.0302"),
    # Public administration and social services
    ("human-services", "Human Services, General", "44.0000"),
    ("public-administration", "Public Administration", "44.0401"),
    ("social-work", "Social Work", "44.0701"),
    # Construction and mechanic trades
    ("electrician", "Electrician", "46.0302"),
    (
        "hvac",
        "Heating, Air Conditioning, Ventilation and Refrigeration Maintenance Technology/Technician",
        "47.0201",
    ),
    ("automotive-technology", "Automobile/Automotive Mechanics Technology/Technician", "47.0604"),
    ("diesel-technology", "Diesel Mechanics Technology/Technician", "47.0605"),
    ("welding", "Welding Technology/Welder", "48.0508"),
    ("commercial-driving", "Truck and Bus Driver/Commercial Vehicle Operator and Instructor", "49.0205"),
    # Visual arts
    ("graphic-design", "Graphic Design", "50.0409"),
    # Health professions
    ("dental-assisting", "Dental Assisting/Assistant", "51.0601"),
    ("dental-hygiene", "Dental Hygiene/Hygienist", "51.0602"),
    ("healthcare-administration", "Health/Health Care Administration/Management", "51.0701"),
    ("medical-office-management", "Medical Office Management/Administration", "51.0705"),
    (
        "health-information-management",
        "Health Information/Medical Records Administration/Administrator",
        "51.0706",
    ),
    (
        "health-information-technology",
        "Health Information/Medical Records Technology/Technician",
        "51.0707",
    ),
    ("medical-billing-coding", "Medical Insurance Coding Specialist/Coder", "51.0713"),
    ("medical-insurance-specialist", "Medical Insurance Specialist/Medical Biller", "51.0714"),
    ("medical-assisting", "Medical/Clinical Assistant", "51.0801"),
    ("pharmacy-technician", "Pharmacy Technician/Assistant", "51.0805"),
    ("emergency-medical-technician", "Emergency Medical Technology/Technician (EMT Paramedic)", "51.0904"),
    ("respiratory-therapy", "Respiratory Care Therapy/Therapist", "51.0908"),
    ("surgical-technology", "Surgical Technology/Technologist", "51.0909"),
    (
        "diagnostic-medical-sonography",
        "Diagnostic Medical Sonography/Sonographer and Ultrasound Technician",
        "51.0910",
    ),
    ("radiologic-technology", "Radiologic Technology/Science - Radiographer", "51.0911"),
    ("medical-laboratory-technology", "Clinical/Medical Laboratory Technician", "51.1004"),
    ("phlebotomy", "Phlebotomy Technician/Phlebotomist", "51.1009"),
    ("mental-health-counseling", "Mental Health Counseling/Counselor", "51.1508"),
    ("public-health", "Public Health, General", "51.2201"),
    ("healthcare-informatics", "Medical Informatics", "51.2706"),
    ("massage-therapy", "Massage Therapy/Therapeutic Massage", "51.3501"),
    ("registered-nursing", "Registered Nursing/Registered Nurse", "51.3801"),
    ("nursing-administration", "Nursing Administration", "51.3802"),
    ("nursing-practice", "Nursing Practice", "51.3818"),
    ("licensed-practical-nursing", "Licensed Practical/Vocational Nurse Training", "51.3901"),
    ("nursing-assistant", "Nursing Assistant/Aide and Patient Care Assistant/Aide", "51.3902"),
    # Business, management and marketing
    ("general-business", "Business/Commerce, General", "52.0101"),
    ("business-administration", "Business Administration and Management, General", "52.0201"),
    ("supply-chain-management", "Logistics, Materials, and Supply Chain Management", "52.0203"),
    ("project-management", "Project Management", "52.0211"),
    ("organizational-leadership", "Organizational Leadership", "52.0213"),
    ("accounting", "Accounting", "52.0301"),
    ("bookkeeping", "Accounting Technology/Technician and Bookkeeping", "52.0302"),
    ("entrepreneurship", "Entrepreneurship/Entrepreneurial Studies", "52.0701"),
    ("finance", "Finance, General", "52.0801"),
    ("hospitality-management", "Hospitality Administration/Management, General", "52.0901"),
    ("human-resources", "Human Resources Management/Personnel Administration, General", "52.1001"),
    ("management-information-systems", "Management Information Systems, General", "52.1201"),
    ("marketing", "Marketing/Marketing Management, General", "52.1401"),
)

INTERESTS: tuple[Interest, ...] = tuple(
    sorted((Interest(slug, name, code) for slug, name, code in _ENTRIES), key=lambda i: i.cip_code)
)
INTEREST_BY_SLUG: dict[str, Interest] = {interest.slug: interest for interest in INTERESTS}

if len(INTEREST_BY_SLUG) != len(INTERESTS):
    raise RuntimeError("duplicate interest slug")
